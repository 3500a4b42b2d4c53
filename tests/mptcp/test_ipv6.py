"""MPTCP over IPv6, and one connection that mixes IPv4 and IPv6 subflows."""

import ipaddress
import socket

from harness import traffic

MB = 1_000_000


def test_ipv6_connection_is_mptcp_and_intact(topology):
    topo = topology("dual-stack")
    server_v6 = topo.addresses("server", 6)[0]
    result = traffic.transfer(topo.ns("client"), topo.ns("server"), server_v6, nbytes=10 * MB)
    assert result.intact and result.sent.is_mptcp and result.received.is_mptcp
    (addrs,) = result.sent.addrs
    assert addrs.remote == (server_v6, addrs.remote[1])
    assert ":" in addrs.local[0]


def test_ipv4_mapped_connection_on_an_ipv6_socket_adds_an_ipv6_subflow(topology):
    topo = topology("dual-stack")
    client, server = topo.ns("client"), topo.ns("server")
    server_v4 = topo.addresses("server", 4)[0]
    (signalled_v6,) = [e.addr for e in topo.spec.hosts["server"].mptcp.endpoints]
    mapped = f"::ffff:{server_v4}"
    with traffic.session(client, server, mapped, listen_addr="::", family=socket.AF_INET6,
                         subflows=2) as live:
        live.sender.send(nbytes=10 * MB)
        end = live.sender.finish()
    assert live.sink.result().sha256 == end.sha256
    remotes = {ipaddress.ip_address(a.remote[0]) for a in end.addrs}
    assert remotes == {ipaddress.ip_address(mapped), ipaddress.ip_address(signalled_v6)}
    assert all(sub.bytes_acked > 0 for sub in end.subflows)
