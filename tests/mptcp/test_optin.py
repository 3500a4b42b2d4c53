"""MPTCP is opt-in: IPPROTO_MPTCP gives MPTCP, plain TCP stays TCP, net.mptcp.enabled=0 refuses."""

import errno
import socket

import pytest

from harness import sysctl, traffic
from harness.mptcp.constants import IPPROTO_MPTCP, MPTCP_INFO, SOL_MPTCP
from harness.mptcp.sockets import (
    TCP_ESTABLISHED,
    is_mptcp,
    mptcp_info,
    open_socket,
    socket_protocol,
    subflow_tcp_info,
)

HANDSHAKE_COUNTERS = ("MPCapableSYNTX", "MPCapableSYNRX", "MPCapableSYNACKRX", "MPCapableACKRX")


def test_ipproto_mptcp_gives_an_mptcp_connection(netns, mib):
    before = mib(netns)
    result = traffic.transfer(netns, netns, "127.0.0.1", nbytes=1_000_000)
    moved = before.delta(mib(netns))
    assert result.sent.is_mptcp and result.received.is_mptcp
    assert result.intact
    for counter in HANDSHAKE_COUNTERS:
        assert moved.get(counter) == 1, f"{counter} did not move by 1: {moved}"
    assert result.sent.info.remote_key_received and not result.sent.info.fallback


def test_plain_tcp_stays_tcp(netns, mib, capture):
    before = mib(netns)
    cap = capture(netns, "lo")
    protocols = []
    result = traffic.transfer(netns, netns, "127.0.0.1", nbytes=200_000, proto="tcp",
                              on_connected=lambda sock: protocols.append(socket_protocol(sock)))
    cap.stop()
    assert result.intact and protocols == [socket.IPPROTO_TCP]
    assert before.delta(mib(netns)) == {}, "a plain TCP connection moved MPTCP counters"
    segments = cap.segments()
    assert segments and not any(s.mptcp_subtypes for s in segments)


def test_tcp_socket_has_no_mptcp_sockopts(netns):
    with open_socket(netns, proto=socket.IPPROTO_TCP) as sock:
        assert socket_protocol(sock) == socket.IPPROTO_TCP
        with pytest.raises(OSError) as info:
            sock.getsockopt(SOL_MPTCP, MPTCP_INFO, 96)
        assert info.value.errno in (errno.EOPNOTSUPP, errno.ENOPROTOOPT)


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_disabled_mptcp_refuses_the_socket_with_enoprotoopt(netns, family):
    sysctl.write("net.mptcp.enabled", 0, ns=netns)
    with pytest.raises(OSError) as info:
        open_socket(netns, family)
    assert info.value.errno == errno.ENOPROTOOPT
    with open_socket(netns, family, socket.IPPROTO_TCP):
        pass  # plain TCP is unaffected


def test_enabled_is_per_namespace(netns):
    """With MPTCP disabled in one namespace, the test runner's own still makes MPTCP
    connections: the client socket is MPTCP, did not fall back, and its subflow is up."""
    sysctl.write("net.mptcp.enabled", 0, ns=netns)
    with pytest.raises(OSError) as refused:
        open_socket(netns)
    assert refused.value.errno == errno.ENOPROTOOPT
    with traffic.session(None, None, "127.0.0.1") as live:
        live.sender.send(nbytes=100_000)
        assert socket_protocol(live.sock) == IPPROTO_MPTCP and is_mptcp(live.sock)
        info = mptcp_info(live.sock)
        assert info.remote_key_received and not info.fallback
        # the initial subflow comes first in the kernel's list (endpoints someone configured in
        # the runner's namespace could add more)
        assert subflow_tcp_info(live.sock)[0].state == TCP_ESTABLISHED
        end = live.sender.finish()
    assert live.sink.result().sha256 == end.sha256


def test_handshake_and_data_carry_mptcp_options_on_the_wire(netns, capture):
    cap = capture(netns, "lo")
    result = traffic.transfer(netns, netns, "127.0.0.1", nbytes=300_000)
    cap.stop()
    assert result.intact
    segments = cap.segments()
    syn = next(s for s in segments if s.is_syn)
    synack = next(s for s in segments if s.flags == "SA")
    assert syn.mptcp_subtypes == ["MP_CAPABLE"] and synack.mptcp_subtypes == ["MP_CAPABLE"]
    data = [s for s in segments if s.payload_len > 0 and s.dport == syn.dport]
    assert data and all("DSS" in s.mptcp_subtypes or "MP_CAPABLE" in s.mptcp_subtypes
                        for s in data), "a data segment without a DSS mapping"
