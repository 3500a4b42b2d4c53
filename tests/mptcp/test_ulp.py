"""The hidden "mptcp" upper-layer protocol (ULP) of subflows (Documentation/networking/mptcp.rst).

Every subflow of an MPTCP connection is a kernel TCP socket with the "mptcp" ULP attached;
sock_diag reports it (INET_DIAG_ULP_INFO), which `ss -ti` prints as "tcp-ulp-mptcp" followed
by the subflow's MPTCP state. A user cannot attach that ULP to a TCP socket of their own.
"""

import errno
import socket

import pytest

from harness import traffic
from harness.mptcp.sockets import open_socket, subflow_addrs
from harness.mptcp.ss import tcp_sockets

TCP_ULP = 31  # include/uapi/linux/tcp.h; Python's socket module has no name for it


def test_every_subflow_reports_the_mptcp_ulp(topology):
    """Both subflows of a two-path connection, on both hosts, carry the "mptcp" ULP; the
    initial one has the MP_CAPABLE flags, the joined one MP_JOIN's; a plain TCP connection
    in the same namespaces has no ULP."""
    topo = topology("two-paths")
    client, server = topo.ns("client"), topo.ns("server")
    with traffic.session(client, server, topo.addresses("server", 4)[0], subflows=2,
                         listen_addr="0.0.0.0") as live, \
            traffic.session(client, server, topo.addresses("server", 4)[0],
                            proto="tcp") as plain:
        live.sender.send(nbytes=100_000)
        plain.sender.send(nbytes=100_000)
        pairs = [(a.local, a.remote) for a in subflow_addrs(live.sock)]
        plain_pair = (plain.sock.getsockname(), plain.sock.getpeername())
        seen = {"client": tcp_sockets(client), "server": tcp_sockets(server)}
        end, plain_end = live.sender.finish(), plain.sender.finish()
    assert live.sink.result().sha256 == end.sha256
    assert plain.sink.result().sha256 == plain_end.sha256
    assert len(pairs) == 2
    for host, sockets in seen.items():
        subflows = [sockets[p if host == "client" else p[::-1]] for p in pairs]
        assert [sf.ulp for sf in subflows] == ["mptcp", "mptcp"], f"{host}: {subflows}"
        # the mptcp ULP's flags: M/m MP_CAPABLE, J/j MP_JOIN (sent/received)
        initial, joined = (sf.ulp_fields["flags"].upper() for sf in subflows)
        assert "M" in initial and "J" not in initial, f"{host}: {subflows[0]}"
        assert "J" in joined and "M" not in joined, f"{host}: {subflows[1]}"
        plain_sock = sockets[plain_pair if host == "client" else plain_pair[::-1]]
        assert plain_sock.ulp is None, f"{host}: plain TCP has a ULP: {plain_sock}"


@pytest.mark.parametrize("kind, expected", [("tcp", errno.EOPNOTSUPP),
                                            ("tcp-listener", errno.EOPNOTSUPP),
                                            ("mptcp", errno.ENOPROTOOPT)])
def test_a_user_cannot_attach_the_mptcp_ulp(netns, kind, expected):
    """setsockopt(TCP_ULP, "mptcp") fails. On a TCP socket (connected later, or listening)
    the ULP's init refuses any socket the kernel did not create: EOPNOTSUPP. An MPTCP socket
    does not list TCP_ULP among the options it supports: ENOPROTOOPT. The TCP socket is left
    without a ULP and still connects and carries plain TCP."""
    proto = socket.IPPROTO_TCP if kind.startswith("tcp") else traffic.IPPROTO_MPTCP
    with open_socket(netns, proto=proto) as sock:
        if kind == "tcp-listener":
            sock.bind(("127.0.0.1", 0))
            sock.listen(1)
        with pytest.raises(OSError) as refused:
            sock.setsockopt(socket.SOL_TCP, TCP_ULP, b"mptcp")
        assert refused.value.errno == expected, repr(refused.value)
        if kind == "tcp":
            assert sock.getsockopt(socket.SOL_TCP, TCP_ULP, 16).rstrip(b"\0") == b""
            with traffic.Sink(netns, "127.0.0.1", proto="tcp") as sink:
                sock.connect(("127.0.0.1", sink.port))
                sock.sendall(b"x" * 1000)
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL) == 6
                sock.shutdown(socket.SHUT_WR)
                assert sink.result().nbytes == 1000
