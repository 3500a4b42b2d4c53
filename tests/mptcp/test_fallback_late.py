"""Fallback to TCP after the handshake, and the blackhole detection that disables MPTCP.

- A middlebox that strips the MPTCP option after the handshake: the client, whose
  MP_CAPABLE connection is not fully established until an MPTCP-level ack arrives, gets the
  server's first segment without any MPTCP option and falls back to TCP
  (net/mptcp/options.c, check_fully_established: MPCapableDataFallback).
- A middlebox that drops MP_CAPABLE SYNs: after the SYN retransmissions the client retries
  with plain TCP, and, once that plain SYN is answered, concludes MPTCP is blackholed on
  the path (net/mptcp/ctrl.c, mptcp_active_disable: Blackhole). New MPTCP sockets of that
  namespace then connect as TCP at once (MPCapableSYNTXDisabled) for
  net.mptcp.blackhole_timeout seconds; after that they try MPTCP again.
"""

from __future__ import annotations

import time

from harness import nft, traffic

KB = 1000
TABLE = "mlab_fault"
STRIP_FIRST_AFTER_HANDSHAKE = (
    "set done { type inet_service; flags dynamic; }\n"
    "chain out { type filter hook output priority 0;\n"
    "  tcp flags & syn == 0 tcp dport != @done add @done { tcp dport } counter "
    "reset tcp option mptcp\n}")
DROP_MP_CAPABLE_SYNS = (
    "chain out { type filter hook output priority 0;\n"
    "  tcp flags & (syn | ack) == syn tcp option mptcp exists counter drop\n}")
BLACKHOLE_TIMEOUT = 5  # s, for this test's namespace (default 3600); see the test's docstring
EXPIRY_MARGIN = 1.0  # s past the timeout: jiffies granularity and a slow guest


def test_server_segment_without_mptcp_option_after_handshake_falls_back(topology, mib):
    topo = topology("single-path")
    client, server = topo.ns("client"), topo.ns("server")
    before = mib(client)
    with nft.table(server, TABLE, STRIP_FIRST_AFTER_HANDSHAKE):
        result = traffic.transfer(client, server, topo.addresses("server", 4)[0],
                                  nbytes=1000 * KB)
        stripped = nft.counted_packets(server, TABLE)
    assert stripped == 1, f"{stripped} segments stripped"
    assert result.intact
    assert not result.sent.is_mptcp and not result.received.is_mptcp
    moved = before.delta(mib(client))
    assert moved.get("MPCapableSYNACKRX") == 1, "the handshake itself was not MPTCP"
    assert moved.get("MPCapableDataFallback") == 1, moved


def connect_once(topo, on_connected=None) -> traffic.Transfer:
    return traffic.transfer(topo.ns("client"), topo.ns("server"),
                            topo.addresses("server", 4)[0], nbytes=10 * KB,
                            on_connected=on_connected)


def test_blackholed_mp_capable_disables_mptcp_until_the_timeout(topology, mib, capture):
    """MPTCP is off for blackhole_timeout seconds after the detection, then on again.

    The kernel stamps the detection when the plain SYN/ACK arrives, before connect()
    returns, so `detected` (taken when it returned) is an upper bound of the stamp. The
    second connection must be over within the timeout: measured under emulation (TCG, one
    CPU) 0.9-1.6 s after `detected` (3 runs); a 5 s timeout leaves room for a loaded machine and
    keeps the test short. The third connection starts a margin past the timeout.
    """
    topo = topology("single-path", client={"net.mptcp.blackhole_timeout": BLACKHOLE_TIMEOUT})
    client = topo.ns("client")
    before = mib(client)
    with nft.table(client, TABLE, DROP_MP_CAPABLE_SYNS):
        stamps = []
        first = connect_once(topo, on_connected=lambda sock: stamps.append(time.monotonic()))
    (detected,) = stamps
    assert first.intact and not first.sent.is_mptcp
    moved = before.delta(mib(client))
    assert (moved.get("MPCapableSYNTXDrop"), moved.get("Blackhole")) == (1, 1), moved

    cap = capture(client, "eth0")
    before = mib(client)
    second = connect_once(topo)  # the path lets MP_CAPABLE through again: MPTCP stays off
    elapsed = time.monotonic() - detected
    cap.stop()
    assert elapsed < BLACKHOLE_TIMEOUT, f"second connection {elapsed:.1f} s after the first"
    assert second.intact and not second.sent.is_mptcp
    assert before.delta(mib(client)).get("MPCapableSYNTXDisabled") == 1
    syns = [s for s in cap.segments() if s.is_syn]
    assert syns and all(not s.mptcp_subtypes for s in syns), syns

    time.sleep(max(0.0, detected + BLACKHOLE_TIMEOUT + EXPIRY_MARGIN - time.monotonic()))
    before = mib(client)
    third = connect_once(topo)
    assert third.intact and third.sent.is_mptcp and third.received.is_mptcp
    moved = before.delta(mib(client))
    assert moved.get("MPCapableSYNACKRX") == 1 and "MPCapableSYNTXDisabled" not in moved
