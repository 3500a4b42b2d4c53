"""MPTCP is opt-in: IPPROTO_MPTCP gives MPTCP, plain TCP stays TCP, net.mptcp.enabled=0 refuses."""

import errno
import socket

import pytest

from harness import sysctl, traffic
from harness.mptcp.constants import MPTCP_INFO, SOL_MPTCP
from harness.mptcp.sockets import is_mptcp, mptcp_info, open_socket

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
    result = traffic.transfer(netns, netns, "127.0.0.1", nbytes=200_000, proto="tcp")
    cap.stop()
    assert result.intact and not result.sent.is_mptcp and not result.received.is_mptcp
    assert before.delta(mib(netns)) == {}, "a plain TCP connection moved MPTCP counters"
    segments = cap.segments()
    assert segments and not any(s.mptcp_subtypes for s in segments)


def test_tcp_socket_has_no_mptcp_sockopts(netns):
    with open_socket(netns, proto=socket.IPPROTO_TCP) as sock:
        assert not is_mptcp(sock)
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
    sysctl.write("net.mptcp.enabled", 0, ns=netns)
    with open_socket(None) as sock:  # the test runner's own namespace still has MPTCP
        sock.bind(("127.0.0.1", 0))
        assert mptcp_info(sock).subflows == 0


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
