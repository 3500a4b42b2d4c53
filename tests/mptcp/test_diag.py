"""The kernel's views of a connection agree: sock_diag (ss -M), MPTCP_INFO, MPTCP_FULL_INFO."""

import errno

import pytest

from harness import traffic
from harness.mptcp import diag
from harness.mptcp.sockets import (
    full_info,
    mptcp_info,
    subflow_addrs,
    subflow_tcp_info,
)
from harness.run import run

MB = 1_000_000


def ss_mptcp_endpoints(ns: str) -> set[tuple[str, str]]:
    """(local, peer) 'addr:port' pairs of established MPTCP sockets as iproute2's ss lists them."""
    out = run(["ss", "-M", "-H", "-n", "state", "established"], ns=ns).stdout
    pairs = set()
    for line in out.splitlines():
        fields = line.split()
        pairs.add((fields[-2].replace("[", "").replace("]", ""),
                   fields[-1].replace("[", "").replace("]", "")))
    return pairs


def test_diag_lists_the_connection_like_ss_does(topology):
    topo = topology("single-path")
    client, server = topo.ns("client"), topo.ns("server")
    seen = {}

    def look(sock):
        seen["ours"] = diag.connections(client)
        seen["ss"] = ss_mptcp_endpoints(client)
        seen["token"] = mptcp_info(sock).token
        seen["local"], seen["remote"] = sock.getsockname(), sock.getpeername()

    traffic.transfer(client, server, topo.addresses("server", 4)[0], nbytes=MB, on_connected=look)
    (conn,) = seen["ours"]
    assert conn.state == "ESTAB"
    assert conn.local == tuple(seen["local"]) and conn.remote == tuple(seen["remote"])
    assert conn.info.token == seen["token"]
    ours = {(f"{c.local[0]}:{c.local[1]}", f"{c.remote[0]}:{c.remote[1]}") for c in seen["ours"]}
    assert ours == seen["ss"]


def test_diag_lists_listeners_on_request(topology):
    topo = topology("single-path")
    server = topo.ns("server")
    with traffic.Sink(server, topo.addresses("server", 4)[0]) as sink:
        listeners = [c for c in diag.connections(server, include_listeners=True)
                     if c.state == "LISTEN"]
        assert [c.local for c in listeners] == [(sink.addr, sink.port)]
        assert diag.connections(server) == []
        traffic.connect(topo.ns("client"), sink.addr, sink.port).close()


def test_full_info_agrees_with_the_separate_queries(topology):
    topo = topology("two-paths")
    client, server, addr = topo.ns("client"), topo.ns("server"), topo.addresses("server", 4)[0]
    with traffic.session(client, server, addr, subflows=2) as live:
        live.sender.send(nbytes=4 * MB)
        traffic.wait_all_acked(live.sock)
        traffic.wait_subflows_acked(live.sock)
        try:
            full = full_info(live.sock)
        except OSError as exc:
            if exc.errno != errno.EOPNOTSUPP:
                raise
            pytest.skip("the running kernel has no MPTCP_FULL_INFO (added in Linux 6.6)")
        info = mptcp_info(live.sock)
        addrs, tcp = subflow_addrs(live.sock), subflow_tcp_info(live.sock)
        end = live.sender.finish()
    assert live.sink.result().sha256 == end.sha256
    assert full.mptcp.token == info.token and full.mptcp.bytes_acked == info.bytes_acked
    assert full.num_subflows == info.subflows_total == len(full.subflows) == 2
    assert [(s.local, s.remote) for s in full.subflows] == [(a.local, a.remote) for a in addrs]
    assert len({s.id for s in full.subflows}) == 2, "subflow ids must be distinct"
    for sub, alone in zip(full.subflows, tcp, strict=True):
        assert sub.tcp.state == alone.state == 1  # TCP_ESTABLISHED
        assert sub.tcp.bytes_acked == alone.bytes_acked  # nothing moved in between


def test_ss_shows_mptcp_info_fields(topology):
    topo = topology("single-path")
    client, server = topo.ns("client"), topo.ns("server")
    out = {}

    def look(sock):
        out["ss"] = run(["ss", "-M", "-H", "-n", "-i", "state", "established"], ns=client).stdout
        out["token"] = mptcp_info(sock).token

    traffic.transfer(client, server, topo.addresses("server", 4)[0], nbytes=MB, on_connected=look)
    assert f"token:{out['token']:x}" in out["ss"], out["ss"]
