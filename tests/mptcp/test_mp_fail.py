"""MP_FAIL and the infinite mapping: a middlebox that changes payload bytes (RFC 8684 section 3.7).

With DSS checksums on (net.mptcp.checksum_enabled=1 at both ends), the receiver detects a
payload byte changed on the path (DataCsumErr). What follows depends on the subflows
(net/mptcp/subflow.c, subflow_check_data_avail -> mptcp_subflow_fail):

- one subflow: the receiver sends MP_FAIL, the sender answers MP_FAIL and an infinite
  mapping, and the connection goes on as plain TCP. The changed bytes are delivered as they
  arrived, as TCP through that middlebox would deliver them. On 6.12 (and 6.18) the skb
  that carries the infinite mapping is sized for the MSS of a socket that has fallen back,
  which leaves no room for its DSS option: each of its segments exceeds the MTU, the IP
  layer drops it (IpFragFails) at every try, and the transfer stalls for good. Our 0014
  keeps that skb within one segment that fits.
- more than one: the receiver resets the subflow that carried the bad data (RST with MP_FAIL
  and MP_TCPRST, reason MPTCP_RST_EMIDDLEBOX) and discards that data, which the sender
  sends again on the other subflow: the application reads every byte intact.

The "middlebox" is one nftables rule in the client's output path that overwrites one byte
of one data segment with 0xff (`@th` offsets are in bits; the TCP checksum is not an issue:
veth hands the segment over with its checksum still to be computed). The rule goes in only
once a first megabyte has been acknowledged, so the receiver has seen valid checksums on the
subflow (valid_csum_seen), the condition for MP_FAIL rather than an immediate fallback.
"""

from __future__ import annotations

import hashlib
import random
import socket
import threading

from harness import nft, traffic
from harness.mptcp import mib as mib_counters
from harness.mptcp.sockets import mptcp_info, wait_subflows
from harness.topology import load_named, with_link_impairment
from harness.wait import WaitTimeout

MB = 1_000_000
CHECKSUMS = {"net.mptcp.checksum_enabled": 1}
CORRUPT_OFFSET_BITS = 200 * 8  # 200 bytes into the TCP header: payload, past any options
MARK = 0xFF  # the value written; the data sent never contains it
TABLE = "mlab_corrupt"
MPTCP_RST_EMIDDLEBOX = 6
INFINITE_MAP_PATCH = "mptcp-keep-the-infinite-mapping-within-one-segment"  # 0014
STALL_BOUND_S = 20.0  # the 2 MB after the corruption take about a second at ONE_PATH_RATE_BIT
ONE_PATH_RATE_BIT = 20_000_000
# Acknowledged before the rest of the first megabyte, and before the join: see
# send_with_corruption() for why the join must not meet a megabyte in flight.
FIRST_WRITE = 1000


def corrupt_one_segment(ns: str, iface: str):
    """Overwrite one byte of the first large TCP segment leaving `iface` (once per source port)."""
    body = (f"set done {{ type inet_service; flags dynamic; }}\n"
            f"chain out {{ type filter hook output priority 0;\n"
            f"  oifname \"{iface}\" meta l4proto tcp meta length > 1000 tcp sport != @done "
            f"add @done {{ tcp sport }} counter @th,{CORRUPT_OFFSET_BITS},8 set {MARK}\n}}")
    return nft.table(ns, TABLE, body)


def payload(nbytes: int, seed: int) -> bytes:
    """Pseudo-random bytes without MARK, so the corrupted byte stands out in what arrives."""
    return random.Random(seed).randbytes(nbytes).replace(bytes([MARK]), b"\x00")


class Collector:
    """An MPTCP server in ns that keeps every byte of one connection (a few MB at most)."""

    def __init__(self, ns: str, addr: str):
        self.sock = traffic.open_socket(ns, traffic.family_of(addr))
        self.sock.bind((addr, 0))
        self.sock.listen(1)
        self.sock.settimeout(traffic.SOCKET_TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.data = bytearray()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Collector:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()
        self._thread.join(timeout=10)

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(traffic.SOCKET_TIMEOUT)
                while chunk := conn.recv(65536):
                    self.data += chunk
        except OSError as exc:
            self.error = exc

    def received(self) -> bytes:
        self._thread.join(traffic.SOCKET_TIMEOUT)
        assert self.error is None, f"the server failed: {self.error!r}"
        return bytes(self.data)


def joins_moved(before) -> dict[str, int]:
    """The MPJoin* counters that moved in before's namespace since `before` was taken."""
    moved = before.delta(mib_counters.snapshot(before.ns))
    return {name: n for name, n in moved.items() if name.startswith("MPJoin")}


def send_with_corruption(topo, iface: str, subflows: int,
                         stall_bound: float = traffic.SOCKET_TIMEOUT
                         ) -> tuple[bytes, bytes, int | None]:
    """Send 1 MB over `subflows` subflows, corrupt one segment leaving the client's `iface`,
    send 2 MB more, all acknowledged within `stall_bound` seconds. Returns (sent, received)
    as the applications saw them, and how many subflows were left once the client's data was
    all acknowledged (None with one subflow: a fallen-back socket may refuse MPTCP_INFO).

    The subflows are all established after a first small write and before the megabyte.
    A join that completes while the megabyte is in flight can meet the bug our 0013 fixes:
    the server's passive join, flushed late from the join list, has its mapping in use
    moved to the msk's ack_seq, so with checksums its first mapping fails the check
    (DataCsumErr, MP_FAIL naming the msk's ack_seq instead of the mapping's DSN, reset with
    EMIDDLEBOX) although no byte changed. The host's 6.18 has that bug: 3 runs in 150 of
    the start this test had, never with the join first (60 of 60).
    """
    client, server = topo.ns("client"), topo.ns("server")
    addr = topo.addresses("server", 4)[0]
    first, second = payload(MB, seed=1), payload(2 * MB, seed=2)
    before_client = mib_counters.snapshot(client)
    before_server = mib_counters.snapshot(server)
    with Collector(server, addr) as sink, traffic.connect(client, addr, sink.port) as sock:
        sock.sendall(first[:FIRST_WRITE])
        traffic.wait_all_acked(sock)
        if subflows > 1:
            try:
                wait_subflows(sock, subflows)
            except WaitTimeout as error:
                raise AssertionError(f"{error}; MP_JOIN counters moved: client "
                                     f"{joins_moved(before_client)}, server "
                                     f"{joins_moved(before_server)}") from None
        sock.sendall(first[FIRST_WRITE:])
        traffic.wait_all_acked(sock)
        with corrupt_one_segment(client, iface):
            sock.settimeout(stall_bound)
            try:
                sock.sendall(second)
                traffic.wait_all_acked(sock, timeout=stall_bound)
            except (TimeoutError, WaitTimeout):
                ip = before_client.delta(mib_counters.snapshot(client), group="Ip")
                raise AssertionError(f"the transfer stalled after the corruption; client IP "
                                     f"FragFails moved by {ip.get('FragFails', 0)}") from None
            corrupted = nft.counted_packets(client, TABLE)
            subflows_left = mptcp_info(sock).subflows + 1 if subflows > 1 else None
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
        received = sink.received()
    assert corrupted == 1, f"{corrupted} segments corrupted"
    return first + second, received, subflows_left


def damage(sent: bytes, received: bytes) -> str:
    """What differs between the bytes sent and those the server read, for the failure
    message: the lengths, the first offset that differs, and where the corrupted byte (MARK,
    never in what was sent) reached the application."""
    first = next((i for i, (a, b) in enumerate(zip(sent, received, strict=False)) if a != b),
                 min(len(sent), len(received)))
    marks = [i for i, byte in enumerate(received) if byte == MARK][:5]
    return (f"sent {len(sent)} bytes, the server read {len(received)}; first difference at "
            f"offset {first}; the corrupted byte (0x{MARK:02x}) delivered at {marks or 'none'}")


def test_two_subflows_reset_the_corrupted_one_and_data_goes_on_intact(topology, mib,
                                                                       pm_events, capture):
    """The server resets the join subflow (eth1) with MP_FAIL and MP_TCPRST reason 6.

    MPTCP_RST_EMIDDLEBOX (6) is what subflow_check_data_avail sets when mptcp_subflow_fail
    refuses an infinite fallback because other subflows exist; the client, which receives
    the reset on an established subflow, reports the reason in its `sub_closed` event.
    """
    topo = topology("two-paths", client=CHECKSUMS, server=CHECKSUMS)
    client, server = topo.ns("client"), topo.ns("server")
    events = pm_events(client)
    cap = capture(client, "eth1")
    before_client, before_server = mib(client), mib(server)
    sent, received, subflows_left = send_with_corruption(topo, "eth1", subflows=2)
    cap.stop()
    assert hashlib.sha256(received).digest() == hashlib.sha256(sent).digest(), \
        damage(sent, received)
    assert subflows_left == 1, "the corrupted subflow was not closed"
    client_moved = before_client.delta(mib(client))
    server_moved = before_server.delta(mib(server))
    assert server_moved.get("DataCsumErr") == 1, server_moved
    assert (server_moved.get("MPFailTx"), client_moved.get("MPFailRx")) == (1, 1)
    assert (server_moved.get("MPRstTx"), client_moved.get("MPRstRx")) == (1, 1)
    assert "InfiniteMapTx" not in client_moved and "InfiniteMapRx" not in server_moved
    closed = events.wait_for("sub_closed", saddr=topo.addresses("client", 4)[1])
    assert (closed.reset_reason, closed.reset_flags) == (MPTCP_RST_EMIDDLEBOX, 0), closed
    # the first reset; segments still in flight to the closed subflow draw plain ones after it
    rst = next(s for s in cap.segments() if "R" in s.flags and s.src == closed.daddr)
    assert rst.mptcp_subtypes == ["MP_FAIL", "MP_TCPRST"], rst
    assert mp_tcprst_reason(rst) == MPTCP_RST_EMIDDLEBOX


def mp_tcprst_reason(segment) -> int:
    """The reason byte of a segment's MP_TCPRST option (RFC 8684 section 3.6)."""
    (data,) = [d for kind, d in segment.options if kind == 30 and d[0] >> 4 == 8]
    return data[1]


def test_one_subflow_falls_back_with_an_infinite_mapping_and_the_transfer_ends(
        topology, mib, capture, built_with):
    """One subflow: the client answers the server's MP_FAIL with an infinite mapping (a DSS
    of data length 0) that reaches the wire, the transfer ends as plain TCP, and the server
    reads every byte as sent except the one the path changed.

    The link runs at ONE_PATH_RATE_BIT: the client's data waits in its subflow's write
    queue, so the skb with the infinite mapping leaves on a later ACK, sized by the MSS of
    then (the case 0014 fixes; in the push that builds it, it still fits)."""
    built_with(INFINITE_MAP_PATCH, lambda: "no build record of this kernel to tell")
    topo = topology(with_link_impairment(load_named("single-path"), rate_bit=ONE_PATH_RATE_BIT),
                    client=CHECKSUMS, server=CHECKSUMS)
    client, server = topo.ns("client"), topo.ns("server")
    cap = capture(client, "eth0")
    before_client, before_server = mib(client), mib(server)
    sent, received, _ = send_with_corruption(topo, "eth0", subflows=1,
                                             stall_bound=STALL_BOUND_S)
    cap.stop()
    after_client = mib(client)
    client_moved = before_client.delta(after_client)
    server_moved = before_server.delta(mib(server))
    assert server_moved.get("DataCsumErr") == 1, server_moved
    assert (server_moved.get("MPFailTx"), client_moved.get("MPFailRx")) == (1, 1)
    assert client_moved.get("InfiniteMapTx") == 1, client_moved
    assert before_client.delta(after_client, group="Ip").get("FragFails", 0) == 0
    infinite = [s for s in cap.segments() if s.src == topo.addresses("client", 4)[0]
                and s.payload_len and (m := s.dss_mapping) and m.length == 0]
    assert infinite, "no infinite mapping (a DSS of data length 0) on the wire"
    changed = [i for i, (a, b) in enumerate(zip(sent, received, strict=False)) if a != b]
    assert len(received) == len(sent) and len(changed) == 1, damage(sent, received)
    assert received[changed[0]] == MARK, damage(sent, received)
