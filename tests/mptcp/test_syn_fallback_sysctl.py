"""net.mptcp.syn_retrans_before_tcp_fallback (kernel_patches/0005).

A middlebox drops every SYN that carries MP_CAPABLE: the client retransmits its SYN with
MP_CAPABLE as many times as the sysctl says, then retries without it (plain TCP), which
the middlebox lets through. SYNs are counted on the wire and with the MIB counter.
"""

import errno

import pytest

from harness import nft, sysctl, traffic
from harness.mptcp.constants import IPPROTO_MPTCP
from harness.mptcp.sockets import socket_protocol

KEY = "net.mptcp.syn_retrans_before_tcp_fallback"
MB = 1_000_000
NEVER = 128  # from 128 on (beyond TCP_SYNCNT's range), as in upstream kernels since 6.15


PATCH = "mptcp-add-the-syn_retrans_before_tcp_fallback-sysctl"  # 0005


@pytest.fixture(autouse=True)
def series_applied(built_with):
    built_with(PATCH, lambda: None if sysctl.exists(KEY) else f"no {KEY}")


def syns_sent(cap):
    return [s for s in cap.segments() if s.is_syn]


def test_default_is_two(netns):
    assert sysctl.read(KEY, netns) == "2"


@pytest.mark.parametrize("value", [-1, 256])
def test_values_out_of_the_u8_range_are_refused(netns, value):
    with pytest.raises(sysctl.SysctlError, match="Invalid argument"):
        sysctl.write(KEY, value, netns)
    assert sysctl.read(KEY, netns) == "2"


@pytest.mark.parametrize("retransmissions", [0, 1, 2])
def test_mp_capable_syns_before_plain_tcp_match_the_sysctl(topology, mib, capture,
                                                           retransmissions):
    topo = topology("middlebox-drop", client={KEY: retransmissions})
    client, server = topo.ns("client"), topo.ns("server")
    cap = capture(client, topo.interface("client", 0))
    before = mib(client)
    protocols = []
    result = traffic.transfer(client, server, topo.addresses("server", 4)[0], nbytes=MB,
                              on_connected=lambda sock: protocols.append(socket_protocol(sock)))
    cap.stop()
    # fallback: still an MPTCP socket (SO_PROTOCOL), no longer running MPTCP (TCP_IS_MPTCP)
    assert result.intact and protocols == [IPPROTO_MPTCP] and not result.sent.is_mptcp
    syns = syns_sent(cap)
    with_mp_capable = [s for s in syns if "MP_CAPABLE" in s.mptcp_subtypes]
    assert len(with_mp_capable) == 1 + retransmissions, \
        f"{len(with_mp_capable)} MP_CAPABLE SYNs for {KEY}={retransmissions}"
    assert syns[len(with_mp_capable)].mptcp_subtypes == [], "no plain SYN after them"
    assert syns[:len(with_mp_capable)] == with_mp_capable, "a plain SYN came too early"
    assert before.delta(mib(client)).get("MPCapableSYNTXDrop") == 1


def test_never_keeps_mp_capable_until_the_connection_attempt_times_out(topology, mib, capture):
    # 3 SYN retries, without the linear ones added in 6.5: the default (2) would send the
    # third retransmission without MP_CAPABLE
    topo = topology("middlebox-drop", client={KEY: NEVER, "net.ipv4.tcp_syn_retries": 3,
                                              "net.ipv4.tcp_syn_linear_timeouts": 0})
    client = topo.ns("client")
    cap = capture(client, topo.interface("client", 0))
    before = mib(client)
    with pytest.raises(OSError) as failure:
        traffic.connect(client, topo.addresses("server", 4)[0], 80)
    cap.stop()
    assert failure.value.errno == errno.ETIMEDOUT, repr(failure.value)
    syns = syns_sent(cap)
    assert len(syns) == 4, f"{len(syns)} SYNs for tcp_syn_retries=3"
    assert all("MP_CAPABLE" in s.mptcp_subtypes for s in syns), "a SYN without MP_CAPABLE"
    # icsk_retransmits never reaches NEVER (3 < 128), so no retransmission falls back; the
    # attempt that expired is then accounted once as a dropped MP_CAPABLE SYN attempt
    # (mptcp_active_detect_blackhole, as upstream), and no SYN/ACK ever made it fall back
    moved = before.delta(mib(client))
    assert moved.get("MPCapableSYNTX") == 1 and moved.get("MPCapableSYNTXDrop") == 1
    assert "MPCapableFallbackSYNACK" not in moved


# the client's first SYN to each server address is lost, its retransmissions are not
LOSE_FIRST_SYN = (
    "set lost { type ipv4_addr; flags dynamic; }\n"
    "chain out { type filter hook output priority 0;\n"
    "  tcp flags & (syn | ack) == syn ip daddr != @lost add @lost { ip daddr } counter drop\n}")


@pytest.mark.parametrize("retransmissions", [0, 2])
def test_a_low_value_turns_one_lost_syn_into_a_blackhole_detection(topology, mib,
                                                                    retransmissions):
    """The documentation's warning: with 0, a path that lost a single SYN looks like an
    MPTCP blackhole. The first retransmission goes without MP_CAPABLE; once the server
    answers it, the client concludes MPTCP is blackholed and disables it in its namespace
    for blackhole_timeout (3600 s): the next connection is plain TCP from its first SYN.
    With the default, the retransmitted SYN still carries MP_CAPABLE and nothing changes.
    """
    topo = topology("single-path", client={KEY: retransmissions})
    client, server = topo.ns("client"), topo.ns("server")
    addr = topo.addresses("server", 4)[0]
    before = mib(client)
    with nft.table(client, "mlab_lose_first_syn", LOSE_FIRST_SYN) as table:
        first = traffic.transfer(client, server, addr, nbytes=10_000)
        lost = nft.counted_packets(client, table)
    second = traffic.transfer(client, server, addr, nbytes=10_000)
    moved = before.delta(mib(client))
    assert lost == 1 and first.intact and second.intact
    if retransmissions == 0:
        assert not first.sent.is_mptcp and not second.sent.is_mptcp
        assert (moved.get("Blackhole"), moved.get("MPCapableSYNTXDisabled")) == (1, 1), moved
    else:
        assert first.sent.is_mptcp and second.sent.is_mptcp
        assert "Blackhole" not in moved and "MPCapableSYNTXDisabled" not in moved, moved
