"""MPTCP over IPv6, and one connection that mixes IPv4 and IPv6 subflows."""

import ipaddress
import socket

from harness import traffic

MB = 1_000_000


def test_ipv6_connection_is_mptcp_and_intact(topology):
    """The subflow the kernel reports (MPTCP_SUBFLOW_ADDRS) joins the two sockets' own names."""
    topo = topology("dual-stack")
    server_v6 = topo.addresses("server", 6)[0]
    with traffic.session(topo.ns("client"), topo.ns("server"), server_v6) as live:
        live.sender.send(nbytes=10 * MB)
        local_addr, local_port = live.sock.getsockname()[:2]
        end = live.sender.finish()
    received = live.sink.result()
    assert received.sha256 == end.sha256 and end.is_mptcp and received.is_mptcp
    (addrs,) = end.addrs
    assert addrs.remote == (server_v6, live.sink.port)
    assert addrs.local == (local_addr, local_port) and local_addr in topo.addresses("client", 6)


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
    assert {a.remote[1] for a in end.addrs} == {live.sink.port}  # the announce had no port
    assert all(sub.bytes_acked > 0 for sub in end.subflows)
