"""The userspace path manager (net.mptcp.pm_type=1): subflows and announces on command, events."""

from harness import traffic
from harness.mptcp.sockets import wait_subflows

MB = 1_000_000
USERSPACE_PM = {"net.mptcp.pm_type": 1}


def test_userspace_pm_creates_a_subflow_and_events_follow_the_connection(topology, pm, pm_events):
    topo = topology("two-paths", client=USERSPACE_PM)
    client, server = topo.ns("client"), topo.ns("server")
    (local_1, local_2), (remote_1, remote_2) = (topo.addresses("client", 4)[:2],
                                                topo.addresses("server", 4)[:2])
    events = pm_events(client)
    with traffic.Sink(server, "0.0.0.0") as sink, \
            traffic.connect(client, remote_1, sink.port) as sock:
        created = events.wait_for("created")
        established = events.wait_for("established", token=created.token)
        assert (created.saddr, created.sport) == tuple(sock.getsockname())
        assert (established.daddr, established.dport) == (remote_1, sink.port)
        token = created.token

        pm(client).subflow_create(token, local_addr=local_2, local_id=23,
                                  remote_addr=remote_2, remote_port=sink.port)
        joined = events.wait_for("sub_established", token=token)
        assert (joined.saddr, joined.daddr, joined.dport) == (local_2, remote_2, sink.port)
        wait_subflows(sock, 2)
        sent = traffic.send_stream(sock, nbytes=10 * MB)
        end = traffic.finish(sock, traffic.protocol("mptcp"), sent)
    assert sink.result().sha256 == end.sha256
    assert {a.local[0] for a in end.addrs} == {local_1, local_2}
    assert all(sub.bytes_acked > MB for sub in end.subflows)
    events.wait_for("closed", token=token)


def test_userspace_pm_destroys_the_subflow_it_made(topology, pm, pm_events):
    topo = topology("two-paths", client=USERSPACE_PM)
    client, server = topo.ns("client"), topo.ns("server")
    local_2, (remote_1, remote_2) = topo.addresses("client", 4)[1], topo.addresses("server", 4)[:2]
    events = pm_events(client)
    with traffic.Sink(server, "0.0.0.0") as sink, \
            traffic.connect(client, remote_1, sink.port) as sock:
        token = events.wait_for("established").token
        pm(client).subflow_create(token, local_addr=local_2, local_id=23,
                                  remote_addr=remote_2, remote_port=sink.port)
        joined = events.wait_for("sub_established", token=token)
        pm(client).subflow_destroy(token, local_addr=local_2, local_port=joined.sport,
                                   remote_addr=remote_2, remote_port=sink.port)
        closed = events.wait_for("sub_closed", token=token)
        assert (closed.saddr, closed.sport) == (local_2, joined.sport)
        sent = traffic.send_stream(sock, nbytes=MB)
        end = traffic.finish(sock, traffic.protocol("mptcp"), sent)
    assert end.info.subflows == 0 and sink.result().sha256 == end.sha256


def test_userspace_pm_announce_and_remove_reach_the_peer(topology, pm, pm_events, mib):
    topo = topology("two-paths", server=USERSPACE_PM)
    client, server = topo.ns("client"), topo.ns("server")
    remote_1, remote_2 = topo.addresses("server", 4)[:2]
    server_events, client_events = pm_events(server), pm_events(client)
    before = mib(client)
    with traffic.Sink(server, "0.0.0.0") as sink, \
            traffic.connect(client, remote_1, sink.port) as sock:
        token = server_events.wait_for("established").token
        pm(server).announce(token, remote_2, id=7)
        announced = client_events.wait_for("announced")
        assert (announced.daddr, announced.rem_id) == (remote_2, 7)
        pm(server).remove(token, id=7)
        removed = client_events.wait_for("removed", token=announced.token)
        assert removed.rem_id == 7
        sent = traffic.send_stream(sock, nbytes=MB)
        traffic.finish(sock, traffic.protocol("mptcp"), sent)
    moved = before.delta(mib(client))
    assert moved.get("AddAddr") == 1 and moved.get("RmAddr") == 1
