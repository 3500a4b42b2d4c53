"""The userspace path manager (net.mptcp.pm_type=1): subflows and announces on command, events."""

import time

from harness import traffic
from harness.mptcp.events import EventKind
from harness.mptcp.sockets import mptcp_info, wait_subflows

MB = 1_000_000
USERSPACE_PM = {"net.mptcp.pm_type": 1}
# the in-kernel PM joins as soon as the connection is fully established: a PM that has not
# joined this long after that will not do it by itself
NO_JOIN_WINDOW = 2.0
JOINED_BYTES = 10 * MB  # sent once joined, through two-paths as written (scaled with its links)
SUBFLOW_MIN_BYTES = MB  # of them, through each subflow


def established_client(events, sender, sport):
    """Send a first chunk (a client is fully established once data is acked); its token."""
    created = events.wait_for("created", sport=sport)
    sender.send(nbytes=MB)
    events.wait_for("established", token=created.token)
    return created


def watch_for_joins(events, seconds: float) -> list:
    """Listen to the PM events for `seconds` (a bounded wait, not a sleep); the subflow
    events (sub_established, sub_closed) seen since the listener started."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        events.poll(remaining)
    return [e for e in events.events
            if e.kind in (EventKind.SUB_ESTABLISHED, EventKind.SUB_CLOSED)]


def test_userspace_pm_creates_a_subflow_and_events_follow_the_connection(topology, paced_links,
                                                                         pm, pm_events, mib):
    """Both subflows must carry data once joined: on a kernel that cannot fill the links (the
    default scheduler uses the second subflow only when the first one's link is full) they
    are scaled to what it fills (paced_links), and the data sent once joined and the least
    each subflow must carry with them."""
    spec, scale = paced_links("two-paths", transfer=JOINED_BYTES)
    topo = topology(spec, client=USERSPACE_PM)
    client, server = topo.ns("client"), topo.ns("server")
    (local_1, local_2), (remote_1, remote_2) = (topo.addresses("client", 4)[:2],
                                                topo.addresses("server", 4)[:2])
    events = pm_events(client)
    before = mib(client)
    with traffic.session(client, server, remote_1, listen_addr="0.0.0.0") as live:
        port = live.sink.port
        created = established_client(events, live.sender, live.sock.getsockname()[1])
        assert (created.saddr, created.daddr, created.dport) == (local_1, remote_1, port)
        # the userspace PM must not join by itself: from the connect until NO_JOIN_WINDOW after
        # full establishment, no MP_JOIN SYN left (a counter: nothing in between escapes), no
        # subflow event came and no subflow is counted
        assert watch_for_joins(events, NO_JOIN_WINDOW) == [], "a subflow without a command"
        assert "MPJoinSynTx" not in before.delta(mib(client)), "an MP_JOIN without a command"
        assert mptcp_info(live.sock).subflows == 0

        pm(client).subflow_create(created.token, local_addr=local_2, local_id=23,
                                  remote_addr=remote_2, remote_port=port)
        joined = events.wait_for("sub_established", token=created.token)
        assert (joined.saddr, joined.daddr, joined.dport, joined.loc_id) == \
            (local_2, remote_2, port, 23)
        wait_subflows(live.sock, 2)
        live.sender.send(nbytes=int(JOINED_BYTES * scale))
        end = live.sender.finish()
    assert live.sink.result().sha256 == end.sha256
    assert {a.local[0] for a in end.addrs} == {local_1, local_2}
    assert all(sub.bytes_acked > SUBFLOW_MIN_BYTES * scale for sub in end.subflows), \
        [sub.bytes_acked for sub in end.subflows]
    events.wait_for("closed", token=created.token)


def test_userspace_pm_destroys_the_subflow_it_made(topology, pm, pm_events):
    topo = topology("two-paths", client=USERSPACE_PM)
    client, server = topo.ns("client"), topo.ns("server")
    local_2, (remote_1, remote_2) = topo.addresses("client", 4)[1], topo.addresses("server", 4)[:2]
    events = pm_events(client)
    with traffic.session(client, server, remote_1, listen_addr="0.0.0.0") as live:
        port = live.sink.port
        token = established_client(events, live.sender, live.sock.getsockname()[1]).token
        pm(client).subflow_create(token, local_addr=local_2, local_id=23,
                                  remote_addr=remote_2, remote_port=port)
        joined = events.wait_for("sub_established", token=token)
        pm(client).subflow_destroy(token, local_addr=local_2, local_port=joined.sport,
                                   remote_addr=remote_2, remote_port=port)
        closed = events.wait_for("sub_closed", token=token)
        assert (closed.saddr, closed.sport) == (local_2, joined.sport)
        live.sender.send(nbytes=MB)
        end = live.sender.finish()
    assert end.info.subflows == 0 and live.sink.result().sha256 == end.sha256


def test_userspace_pm_announce_and_remove_reach_the_peer(topology, pm, pm_events, mib):
    topo = topology("two-paths", server=USERSPACE_PM)
    client, server = topo.ns("client"), topo.ns("server")
    remote_1, remote_2 = topo.addresses("server", 4)[:2]
    server_events, client_events = pm_events(server), pm_events(client)
    before = mib(client)
    with traffic.session(client, server, remote_1, listen_addr="0.0.0.0") as live:
        token = server_events.wait_for("established").token  # the server's: at the third ACK
        pm(server).announce(token, remote_2, id=7)
        announced = client_events.wait_for("announced")
        assert (announced.daddr, announced.rem_id) == (remote_2, 7)
        pm(server).remove(token, id=7)
        removed = client_events.wait_for("removed", token=announced.token)
        assert removed.rem_id == 7
        live.sender.send(nbytes=MB)
        end = live.sender.finish()
    assert live.sink.result().sha256 == end.sha256
    moved = before.delta(mib(client))
    assert moved.get("AddAddr") == 1 and moved.get("RmAddr") == 1
