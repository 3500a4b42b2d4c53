"""Fallback to plain TCP: against a TCP peer and through middleboxes that touch MPTCP options."""

from harness import sysctl, traffic
from harness.mptcp import diag

MB = 1_000_000


def test_mptcp_client_falls_back_against_a_plain_tcp_server(topology, mib):
    topo = topology("single-path")
    client, server = topo.ns("client"), topo.ns("server")
    before = mib(client)
    result = traffic.transfer(client, server, topo.addresses("server", 4)[0], nbytes=5 * MB,
                              proto="mptcp", server_proto="tcp")
    assert result.intact
    assert not result.sent.is_mptcp and result.sent.info is None
    moved = before.delta(mib(client))
    assert moved.get("MPCapableSYNTX") == 1 and moved.get("MPCapableFallbackSYNACK") == 1


def test_plain_tcp_client_is_served_by_an_mptcp_listener(topology, mib):
    topo = topology("single-path")
    client, server = topo.ns("client"), topo.ns("server")
    before = mib(server)
    result = traffic.transfer(client, server, topo.addresses("server", 4)[0], nbytes=5 * MB,
                              proto="tcp", server_proto="mptcp")
    assert result.intact and not result.received.is_mptcp
    moved = before.delta(mib(server))
    assert "MPCapableSYNRX" not in moved and "MPCapableACKRX" not in moved


def test_fallback_flag_is_reported_for_a_live_connection(topology):
    topo = topology("single-path")
    client, server = topo.ns("client"), topo.ns("server")
    seen = []

    def look(sock):
        seen.extend(diag.connections(client))

    traffic.transfer(client, server, topo.addresses("server", 4)[0], nbytes=MB,
                     server_proto="tcp", on_connected=look)
    (conn,) = seen
    assert conn.info.fallback, f"mptcp_info of a fallen-back socket: {conn.info}"


def test_middlebox_stripping_mptcp_options_forces_fallback(topology, mib, capture):
    topo = topology("middlebox-fallback")
    client, server = topo.ns("client"), topo.ns("server")
    before_client, before_server = mib(client), mib(server)
    cap = capture(server, topo.interface("server", 0))
    seen = []
    result = traffic.transfer(client, server, topo.addresses("server", 4)[0], nbytes=10 * MB,
                              on_connected=lambda sock: seen.extend(diag.connections(client)))
    cap.stop()
    assert result.intact
    assert not result.sent.is_mptcp and not result.received.is_mptcp
    assert seen and seen[0].info.fallback
    assert before_client.delta(mib(client)).get("MPCapableFallbackSYNACK") == 1
    assert "MPCapableSYNRX" not in before_server.delta(mib(server))
    assert topo.middlebox_packets("middlebox") > 0
    assert not any(s.mptcp_subtypes for s in cap.segments()), "an MPTCP option got through"


def test_middlebox_dropping_mptcp_syns_makes_the_client_retry_plain_tcp(topology, mib, capture):
    topo = topology("middlebox-drop")
    client, server = topo.ns("client"), topo.ns("server")
    before = mib(client)
    cap = capture(client, topo.interface("client", 0))
    result = traffic.transfer(client, server, topo.addresses("server", 4)[0], nbytes=MB)
    cap.stop()
    assert result.intact and not result.sent.is_mptcp
    moved = before.delta(mib(client))
    assert moved.get("MPCapableSYNTXDrop") == 1, moved
    syns = [s for s in cap.segments() if s.is_syn]
    with_mpc = [s for s in syns if "MP_CAPABLE" in s.mptcp_subtypes]
    assert syns[-1].mptcp_subtypes == [], "the last SYN still carried MP_CAPABLE"
    assert len(with_mpc) == 1 + mpc_syn_retransmissions(client)


def mpc_syn_retransmissions(ns: str) -> int:
    """How many MP_CAPABLE SYNs are retransmitted before a plain one (6.12: always 2)."""
    key = "net.mptcp.syn_retrans_before_tcp_fallback"
    return int(sysctl.read(key, ns)) if sysctl.exists(key, ns) else 2
