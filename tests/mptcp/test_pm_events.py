"""PM events beyond the connection's life cycle: SUB_PRIORITY after MP_PRIO, and listeners.

The userspace PM (net.mptcp.pm_type=1 on the client, which manages) sets and clears the backup
flag of a subflow it created (MPTCP_PM_CMD_SET_FLAGS): the kernel sends MP_PRIO on that
subflow, and the peer, which learns the new priority from it, emits
MPTCP_EVENT_SUB_PRIORITY with the backup bit it received. Separately, MPTCP listeners
announce themselves: MPTCP_EVENT_LISTENER_CREATED when one starts listening (an
application's, or the in-kernel PM's own for an endpoint with a port), and
MPTCP_EVENT_LISTENER_CLOSED when it stops; plain TCP listeners do not.

Every event is awaited with EventListener.wait_for's 5 s: in the VM (TCG, 1 CPU, a loaded
host) each came within 0.013 s of what caused it (listener events within 0.001 s: they are
sent from within listen() and close()), so 5 s is only a bound on a missing event.
"""

import contextlib
import socket

import pytest

from harness import traffic
from harness.capture import mp_prio_backup
from harness.mptcp.events import EventKind
from harness.mptcp.sockets import open_socket
from harness.wait import WaitTimeout, wait_until

MB = 1_000_000
USERSPACE_PM = {"net.mptcp.pm_type": 1}
LISTENER_EVENTS = (EventKind.LISTENER_CREATED, EventKind.LISTENER_CLOSED)
MP_PRIO_WRITTEN = 5.0  # seconds for tcpdump to write MP_PRIO that went out before the last 1 MB


def joined_session_token(events, pm, live, local_2, remote_2) -> int:
    """Make the client fully established, then have its userspace PM join local_2 -> remote_2.

    The client is fully established once its first data is acked; the token is its own.
    """
    token = events.wait_for("created", sport=live.sock.getsockname()[1]).token
    live.sender.send(nbytes=MB)
    events.wait_for("established", token=token)
    pm.subflow_create(token, local_addr=local_2, local_id=23, remote_addr=remote_2,
                      remote_port=live.sink.port)
    events.wait_for("sub_established", token=token, saddr=local_2)
    return token


def test_set_flags_sends_mp_prio_and_the_peer_reports_sub_priority(topology, pm, pm_events, mib,
                                                                    capture):
    topo = topology("two-paths", client=USERSPACE_PM)
    client, server = topo.ns("client"), topo.ns("server")
    (local_1, local_2), (remote_1, remote_2) = (topo.addresses("client", 4)[:2],
                                                topo.addresses("server", 4)[:2])
    client_events, server_events = pm_events(client), pm_events(server)
    with traffic.session(client, server, remote_1, listen_addr="0.0.0.0") as live:
        port = live.sink.port
        token = joined_session_token(client_events, pm(client), live, local_2, remote_2)
        server_events.wait_for("sub_established", saddr=remote_2, daddr=local_2)
        second_path = capture(client, "eth1")
        before_client, before_server = mib(client), mib(server)
        for backup in (True, False):
            pm(client).set_flags(token, local_2, remote_2, port, backup=backup)
            prio = server_events.wait_for("sub_priority", saddr=remote_2, daddr=local_2)
            assert prio.backup == int(backup), prio
        live.sender.send(nbytes=MB)
        end = live.sender.finish()
    assert live.sink.result().sha256 == end.sha256
    sent = captured_mp_prio(second_path)
    assert sent == [(local_2, True), (local_2, False)], f"MP_PRIO on the second path: {sent}"
    assert before_client.delta(mib(client)).get("MPPrioTx") == 2
    assert before_server.delta(mib(server)).get("MPPrioRx") == 2
    # the first subflow's priority did not change: no event names it
    assert not [e for e in server_events.events
                if e.kind == EventKind.SUB_PRIORITY and e.daddr == local_1]


def captured_mp_prio(cap) -> list[tuple[str, bool]]:
    """(source, backup flag) of each MP_PRIO in the capture, once tcpdump wrote both.

    tcpdump stopped right after the peer's event may not have read the last packet from its
    ring yet (seen once under emulation), so the file is read until it holds two MP_PRIO
    (at most MP_PRIO_WRITTEN seconds) before tcpdump stops.
    """
    def mp_prio():
        return [(s.src, mp_prio_backup(data)) for s in cap.segments()
                for data in s.mptcp_options("MP_PRIO")]

    with contextlib.suppress(WaitTimeout):  # fewer than two: the assertion shows what came
        wait_until(lambda: len(mp_prio()) >= 2, MP_PRIO_WRITTEN, "two MP_PRIO in the capture")
    cap.stop()
    return mp_prio()


def listener_events(events) -> list:
    return [(e.kind, e.family, e.saddr, e.sport) for e in events.events
            if e.kind in LISTENER_EVENTS]


@pytest.mark.parametrize("family, addr", [(socket.AF_INET, "127.0.0.1"),
                                          (socket.AF_INET6, "::1")], ids=["ipv4", "ipv6"])
def test_listener_created_and_closed_events(netns, pm_events, family, addr):
    events = pm_events(netns)
    plain = open_socket(netns, family, socket.IPPROTO_TCP)
    mptcp = open_socket(netns, family)
    with plain, mptcp:
        # the plain listener first: events are sent from within listen(), so a TCP listener
        # event, if there were one, would come before the MPTCP listener's
        plain.bind((addr, 0))
        plain.listen(1)
        mptcp.bind((addr, 0))
        mptcp.listen(1)
        port = mptcp.getsockname()[1]
        events.wait_for("listener_created", sport=port)
        assert listener_events(events) == [(EventKind.LISTENER_CREATED, family, addr, port)]
        plain.close()
        mptcp.close()
        events.wait_for("listener_closed", sport=port)
    assert listener_events(events) == [(EventKind.LISTENER_CREATED, family, addr, port),
                                       (EventKind.LISTENER_CLOSED, family, addr, port)]


def test_endpoint_with_a_port_announces_the_pm_listener(netns, pm, pm_events):
    events = pm_events(netns)
    manager = pm(netns)
    endpoint = manager.add_endpoint("127.0.0.1", flags={"signal"}, port=10100)
    events.wait_for("listener_created", sport=10100, saddr="127.0.0.1")
    manager.del_endpoint(endpoint.id)
    events.wait_for("listener_closed", sport=10100, saddr="127.0.0.1")
    assert [kind for kind, *_ in listener_events(events)] == list(LISTENER_EVENTS)
