"""Packet capture in a namespace (tcpdump) and a small pcap reader for TCP segments.

Tests use it to check what went on the wire: which MPTCP options (TCP option kind 30) and
subtypes a segment carried, TTL / hop limit, TOS / traffic class, segment sizes.
"""

from __future__ import annotations

import ipaddress
import os
import re
import select
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from harness.errors import HarnessError
from harness.netns import NamespaceError, entered
from harness.run import ToolMissing

TCPOPT_MPTCP = 30
MPTCP_SUBTYPES = {0: "MP_CAPABLE", 1: "MP_JOIN", 2: "DSS", 3: "ADD_ADDR", 4: "REMOVE_ADDR",
                  5: "MP_PRIO", 6: "MP_FAIL", 7: "MP_FASTCLOSE", 8: "MP_TCPRST"}
# DSS flags (RFC 8684 3.3, the byte after the subtype): which fields the option carries
DSS_FLAGS = {0x01: "DATA_ACK", 0x02: "DATA_ACK8", 0x04: "DSN", 0x08: "DSN8", 0x10: "DATA_FIN"}
LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 = 1, 113, 276
TCP_FLAG_NAMES = "FSRPAUEC"
SNAPLEN = 200  # enough for Ethernet + IPv6 + a full TCP header with options
FULL_SNAPLEN = 262144  # whole packets, GSO ones included: for checks of the payload
READY_TIMEOUT = 10.0
DRAIN_QUIET = 0.25  # s without the pcap growing: tcpdump has written what it saw
DRAIN_POLL = 0.05
DRAIN_TIMEOUT = 3.0
STOP_TIMEOUT = 10.0  # for a terminated tcpdump to exit before it is killed
# The kernel's ring for tcpdump holds fixed-size slots of the snapshot length: at the
# default 2 MiB and FULL_SNAPLEN, 8 GSO packets, and a burst on a veth overflowed it (the
# host's CI lost 260 kB of a 2 MB transfer). Room for RING_PACKETS at any snapshot length.
DEFAULT_BUFFER_KIB = 2048
RING_PACKETS = 256
DROPPED = re.compile(rb"^(\d+) packets? dropped by kernel$", re.MULTILINE)
NET_DEV = Path("/proc/thread-self/net/dev")  # the calling thread's namespace's interfaces


class CaptureError(HarnessError):
    pass


@dataclass(frozen=True)
class Segment:
    """One captured TCP segment."""

    src: str
    dst: str
    sport: int
    dport: int
    flags: str  # e.g. "S", "SA", "A", "FA"
    options: tuple[tuple[int, bytes], ...]  # (kind, data) in wire order
    payload_len: int
    ttl: int  # IPv4 TTL or IPv6 hop limit
    tos: int  # IPv4 TOS or IPv6 traffic class
    time: float = 0.0  # capture timestamp (seconds since the epoch), from the pcap record
    seq: int = 0  # TCP sequence number (a retransmission repeats one)
    payload: bytes = b""  # the captured part of the payload (all of it if snaplen allowed)

    @property
    def mptcp_subtypes(self) -> list[str]:
        return [MPTCP_SUBTYPES.get(data[0] >> 4, f"subtype-{data[0] >> 4}")
                for kind, data in self.options if kind == TCPOPT_MPTCP and data]

    @property
    def dss_flags(self) -> frozenset[str]:
        """Names of the flags of the segment's DSS option (DSS_FLAGS); empty without one."""
        for kind, data in self.options:
            if kind == TCPOPT_MPTCP and len(data) >= 2 and data[0] >> 4 == 2:
                return frozenset(name for bit, name in DSS_FLAGS.items() if data[1] & bit)
        return frozenset()

    @property
    def dss_mapping(self) -> DssMapping | None:
        """The mapping of the segment's DSS option (RFC 8684 3.3.1); None without one."""
        for data in self.mptcp_options("DSS"):
            return decode_dss_mapping(data)
        return None

    @property
    def data_fin(self) -> bool:
        """The segment carries a DATA_FIN: the sender has no more data at the MPTCP level."""
        return "DATA_FIN" in self.dss_flags

    @property
    def is_syn(self) -> bool:
        return "S" in self.flags and "A" not in self.flags

    def mptcp_options(self, subtype: str) -> list[bytes]:
        """The data (after kind and length) of each MPTCP option of `subtype`, e.g. "MP_PRIO"."""
        return [data for kind, data in self.options
                if kind == TCPOPT_MPTCP and data
                and MPTCP_SUBTYPES.get(data[0] >> 4) == subtype]


@dataclass(frozen=True)
class DssMapping:
    """A DSS option's mapping: `length` bytes of the connection's data from data sequence
    number `dsn` are the subflow's bytes from relative sequence number `ssn`."""

    dsn: int  # as on the wire: 32 bits (the low ones) or 64
    ssn: int  # relative to the subflow's initial sequence number
    length: int  # data-level length, the DATA_FIN's number included (1 on a DATA_FIN alone)
    checksum: int | None = None  # the DSS checksum, when the connection uses them
    dsn64: bool = True  # the DSN field is 8 bytes (the 64-bit number), not its low 32 bits
    data_fin: bool = False  # the option's F flag: the mapping's last number is the DATA_FIN

    @property
    def data_len(self) -> int:
        """The bytes of data it maps: 0 on a DATA_FIN alone and on an infinite mapping."""
        return self.length - self.data_fin

    @property
    def data_end(self) -> int:
        """The data sequence number after its data: the DATA_FIN's, when it carries one."""
        return self.dsn + self.data_len


def decode_dss_mapping(data: bytes) -> DssMapping | None:
    """The mapping of a DSS option's data (after kind and length); None if it has none or is
    too short for the fields its flags announce."""
    if len(data) < 2:
        return None
    flags, at = data[1], 2
    if flags & 0x01:  # DATA_ACK: 8 bytes with DATA_ACK8, else 4
        at += 8 if flags & 0x02 else 4
    if not flags & 0x04:
        return None
    dsn_size = 8 if flags & 0x08 else 4
    if len(data) < at + dsn_size + 6:
        return None
    dsn = int.from_bytes(data[at:at + dsn_size], "big")
    ssn, length = struct.unpack_from("!IH", data, at + dsn_size)
    at += dsn_size + 6
    checksum = struct.unpack_from("!H", data, at)[0] if len(data) >= at + 2 else None
    return DssMapping(dsn, ssn, length, checksum, dsn_size == 8, bool(flags & 0x10))


@dataclass(frozen=True)
class DataRun:
    """A stretch of the connection's data sequence space that one path carried, between
    two stretches of other paths."""

    path: str  # the key its mappings were given under: an interface, an address
    dsn: int
    length: int


def data_runs(mappings: dict[str, list[DssMapping]]) -> list[DataRun]:
    """The data sequence space that the mappings seen on each path cover, in the order of
    the data, cut where it moves to another path. A mapping seen twice on one path (a
    retransmission, or one skb cut into several segments) counts once; a DATA_FIN counts
    for no data (alone, it is a mapping of length 1, as RFC 8684 asks)."""
    unique = sorted({(m.dsn, m.data_len, path) for path, seen in mappings.items()
                     for m in seen if m.data_len > 0})
    runs: list[DataRun] = []
    for dsn, length, path in unique:
        if runs and runs[-1].path == path:
            last = runs[-1]
            runs[-1] = replace(last, length=max(last.length, dsn + length - last.dsn))
        else:
            runs.append(DataRun(path, dsn, length))
    return runs


MP_PRIO_BACKUP = 0x01  # the B flag, low bit of MP_PRIO's first byte (RFC 8684 3.3.8)


def mp_prio_backup(data: bytes) -> bool:
    """The backup (B) flag of an MP_PRIO option's data (Segment.mptcp_options("MP_PRIO"))."""
    return bool(data[0] & MP_PRIO_BACKUP)


ADD_ADDR_ECHO = 0x01  # the E flag, low bit of ADD_ADDR's first byte
ADD_ADDR_HMAC_LEN = 8


@dataclass(frozen=True)
class AddAddr:
    """An ADD_ADDR option (RFC 8684 3.4.1) decoded from its data after kind and length."""

    echo: bool
    addr_id: int
    addr: str
    port: int | None  # None: no port in the option (the one the connection uses)
    hmac: bytes | None  # the truncated HMAC; an echo carries none


def decode_add_addr(data: bytes) -> AddAddr:
    """Decode ADD_ADDR: the family, port and HMAC follow from the option's length alone."""
    echo, addr_id, rest = bool(data[0] & ADD_ADDR_ECHO), data[1], data[2:]
    hmac_len = 0 if echo else ADD_ADDR_HMAC_LEN
    for addr_len, port_len in ((4, 0), (4, 2), (16, 0), (16, 2)):
        if len(rest) == addr_len + port_len + hmac_len:
            break
    else:
        raise CaptureError(f"ADD_ADDR of {len(data) + 2} bytes fits no layout: {data.hex()}")
    raw = rest[:addr_len]
    addr = str(ipaddress.IPv4Address(raw) if addr_len == 4 else ipaddress.IPv6Address(raw))
    port = struct.unpack_from("!H", rest, addr_len)[0] if port_len else None
    hmac = bytes(rest[addr_len + port_len:]) if hmac_len else None
    return AddAddr(echo, addr_id, addr, port, hmac)


def parse_tcp_options(raw: bytes) -> tuple[tuple[int, bytes], ...]:
    options, i = [], 0
    while i < len(raw):
        kind = raw[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2:
            break  # malformed: stop rather than loop
        length = raw[i + 1]
        options.append((kind, bytes(raw[i + 2:i + length])))
        i += length
    return tuple(options)


def _parse_tcp(ip_fields: tuple, data: bytes, ip_payload_len: int) -> Segment | None:
    src, dst, ttl, tos = ip_fields
    if len(data) < 20:
        return None
    sport, dport, seq, _ack, off_flags = struct.unpack_from("!HHIIH", data)
    header_len = (off_flags >> 12) * 4
    flags = "".join(n for bit, n in enumerate(TCP_FLAG_NAMES) if off_flags & (1 << bit))
    options = parse_tcp_options(data[20:header_len])
    payload_len = ip_payload_len - header_len
    return Segment(src, dst, sport, dport, flags, options, payload_len, ttl, tos,
                   seq=seq, payload=bytes(data[header_len:header_len + payload_len]))


def _parse_ip(packet: bytes) -> Segment | None:
    version = packet[0] >> 4 if packet else 0
    if version == 4:
        ihl = (packet[0] & 0x0F) * 4
        tos, ttl, proto = packet[1], packet[8], packet[9]
        total = struct.unpack_from("!H", packet, 2)[0]
        if proto != 6:
            return None
        ips = (str(ipaddress.IPv4Address(packet[12:16])), str(ipaddress.IPv4Address(packet[16:20])))
        return _parse_tcp((*ips, ttl, tos), packet[ihl:], total - ihl)
    if version == 6:
        first, payload_len, next_header, hlim = struct.unpack_from("!IHBB", packet)
        if next_header != 6:
            return None
        ips = (str(ipaddress.IPv6Address(packet[8:24])), str(ipaddress.IPv6Address(packet[24:40])))
        return _parse_tcp((*ips, hlim, (first >> 20) & 0xFF), packet[40:], payload_len)
    return None


_L2_HEADER = {LINKTYPE_ETHERNET: (14, 12), LINKTYPE_LINUX_SLL: (16, 14),
              LINKTYPE_LINUX_SLL2: (20, 0)}  # header length, offset of the ethertype


def read_pcap(path: Path) -> list[Segment]:
    """The TCP segments of a classic pcap file (Ethernet or Linux cooked captures)."""
    data = path.read_bytes()
    if len(data) < 24:
        return []
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    per_second = 1e9 if magic in (0xA1B23C4D, 0x4D3CB2A1) else 1e6  # ns or us timestamps
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    if linktype not in _L2_HEADER:
        raise CaptureError(f"{path}: unsupported pcap link type {linktype}")
    l2_len, _ = _L2_HEADER[linktype]
    segments, pos = [], 24
    while pos + 16 <= len(data):
        seconds, fraction, incl_len = struct.unpack_from(endian + "3I", data, pos)
        frame = data[pos + 16:pos + 16 + incl_len]
        pos += 16 + incl_len
        segment = _parse_ip(frame[l2_len:])
        if segment is not None:
            segments.append(replace(segment, time=seconds + fraction / per_second))
    return segments


def interface_packets(ns: str | None, iface: str) -> int | None:
    """Packets the kernel counted through `iface` of namespace ns, received and sent: what
    a capture there without a filter sees. None if the namespace or interface is gone."""
    try:
        with entered(ns):
            text = NET_DEV.read_text()
    except NamespaceError:
        return None
    for line in text.splitlines()[2:]:  # two header lines, then "name: rx... tx..."
        name, _, counters = line.partition(":")
        if name.strip() == iface:
            fields = counters.split()
            return int(fields[1]) + int(fields[9])  # rx packets, tx packets
    return None


class PcapCounter:
    """How many packets a pcap that tcpdump is writing holds so far; each count() reads on
    from where the last one stopped (a record cut short is not counted yet)."""

    def __init__(self, path: Path):
        self.path, self.packets, self._offset, self._endian = path, 0, 24, ""

    def count(self) -> int:
        try:
            with self.path.open("rb") as pcap:
                if not self._endian:
                    magic = pcap.read(4)
                    if len(magic) < 4:
                        return 0
                    self._endian = "<" if struct.unpack("<I", magic)[0] in (
                        0xA1B2C3D4, 0xA1B23C4D) else ">"
                pcap.seek(self._offset)
                data = pcap.read()
        except FileNotFoundError:
            return 0
        at = 0
        while at + 16 <= len(data):
            incl_len = struct.unpack_from(self._endian + "I", data, at + 8)[0]
            if at + 16 + incl_len > len(data):
                break
            at += 16 + incl_len
            self.packets += 1
        self._offset += at
        return self.packets


def buffer_kib(snaplen: int) -> int:
    """tcpdump's -B: room in the kernel's ring for RING_PACKETS of snaplen bytes."""
    return max(DEFAULT_BUFFER_KIB, snaplen * RING_PACKETS // 1024)


def dropped_by_kernel(stderr: bytes) -> int | None:
    """The packets tcpdump's exit summary says the kernel dropped (None without one)."""
    match = DROPPED.search(stderr)
    return int(match.group(1)) if match else None


class Capture:
    """tcpdump on one interface of a namespace while the block runs; segments() afterwards.

    tcpdump is started and waited for ("listening on") on entry and stopped on exit, also
    when the block raises. The pcap is written to `path`, or by default into a temporary
    directory that close() removes; max_packets caps its size (tcpdump -c). Packets are cut
    after the headers unless `snaplen` asks for more (FULL_SNAPLEN: the whole payload).
    """

    def __init__(self, ns: str | None, iface: str, bpf: tuple[str, ...] = ("tcp",),
                 path: Path | None = None, max_packets: int | None = None,
                 snaplen: int = SNAPLEN):
        self.ns, self.iface, self.bpf, self.max_packets = ns, iface, bpf, max_packets
        self.snaplen = snaplen
        self._dir = None if path else tempfile.TemporaryDirectory(prefix="mlab-pcap-")
        self.path = path or Path(self._dir.name) / f"{iface}.pcap"
        self._proc: subprocess.Popen | None = None
        self._listening_at: int | None = None  # the interface's packet count then
        self.dropped: int | None = None  # by the kernel, as tcpdump said at its end
        self._written = PcapCounter(self.path)

    def __enter__(self) -> Capture:
        self.start()
        self.wait_ready()
        return self

    def start(self) -> None:
        """Start tcpdump; wait_ready() then waits until it listens (start several first)."""
        limit = ("-c", str(self.max_packets)) if self.max_packets else ()
        if shutil.which("tcpdump") is None:
            raise ToolMissing("tcpdump")
        argv = ["tcpdump", "-Z", "root", "-n", "-U", "--immediate-mode", *limit,
                "-s", str(self.snaplen), "-B", str(buffer_kib(self.snaplen)),
                "-i", self.iface, "-w", str(self.path), *self.bpf]
        with entered(self.ns):  # a child starts in its parent thread's namespace: no nsenter
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_ready(self) -> None:
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        deadline, seen = time.monotonic() + READY_TIMEOUT, b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._proc.stderr], [], [], 0.1)
            if ready:
                line = self._proc.stderr.readline()
                seen += line
                if b"listening on" in line:
                    self._listening_at = self._kernel_packets()
                    return
                if not line:
                    break
        raise CaptureError(f"tcpdump on {self.iface} in {self.ns} did not start: "
                           f"{seen.decode(errors='replace').strip()}")

    def stop(self, drain: bool = True) -> None:
        """Stop tcpdump (idempotent); segments() then sees every captured packet, unless
        drain is False: then packets tcpdump has not written yet are lost."""
        if self._proc is None:
            return
        if drain:
            wait_drained([self])
        self._terminate()
        self._reap()

    def _terminate(self) -> None:
        if self._proc is not None:
            self._proc.terminate()

    def _reap(self) -> None:
        """Wait for the terminated tcpdump (killed after STOP_TIMEOUT) and forget it."""
        if self._proc is None:
            return
        if not _exits_within(self._proc, STOP_TIMEOUT):
            self._proc.kill()
        self._proc.wait()
        if self._proc.stderr is not None:
            self.dropped = dropped_by_kernel(self._proc.stderr.read())
            self._proc.stderr.close()
        self._proc = None

    def __exit__(self, *exc) -> None:
        self.stop()

    def _kernel_packets(self) -> int | None:
        """The interface's packet count, if this capture sees every packet of it (no
        filter, no packet limit); else None."""
        if self.bpf or self.max_packets:
            return None
        return interface_packets(self.ns, self.iface)

    def packets_to_write(self) -> int | None:
        """How many packets the pcap must hold to have every packet the interface carried
        since tcpdump listened until now; None if that cannot be known (see _kernel_packets)."""
        now = self._kernel_packets()
        if now is None or self._listening_at is None:
            return None
        return now - self._listening_at

    def packets_written(self) -> int:
        return self._written.count()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def segments(self) -> list[Segment]:
        return read_pcap(self.path)

    def close(self) -> None:
        """Stop, and remove the pcap if it lives in the capture's own temporary directory."""
        self.stop()
        if self._dir is not None:
            self._dir.cleanup()


class Drain:
    """Watches captures' pcaps from the moment it is made: wait() returns once none of them
    has grown for DRAIN_QUIET. tcpdump drops what it has not read yet when it is
    terminated, and on a busy machine it may not have run since the last packet (the host's
    CI lost the closing RST of a test that way). Made before other work (a last snapshot),
    the watch runs during that work, and wait() may return at once.

    It returns sooner when every capture sees all of its interface's packets (no filter):
    once each pcap holds as many packets as the kernel counted on the interface when wait()
    began. The links' own chatter (IPv6 neighbour discovery, MLD reports in the first
    seconds after they come up) then does not keep the pcaps from ever being quiet."""

    def __init__(self, captures: Sequence[Capture]):
        self.captures = list(captures)
        self.sizes = self._sizes()
        self.quiet_since = time.monotonic()

    def _sizes(self) -> dict[Path, int]:
        return {c.path: c.path.stat().st_size if c.path.exists() else 0
                for c in self.captures if c.running}

    def wait(self, timeout: float = DRAIN_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        targets = [(capture, capture.packets_to_write()) for capture in self.captures]
        countable = all(target is not None for _capture, target in targets)
        while time.monotonic() < deadline:
            if not any(capture.running for capture in self.captures):
                return
            if countable and all(capture.packets_written() >= target
                                 for capture, target in targets):
                return
            sizes, now = self._sizes(), time.monotonic()
            if sizes != self.sizes:
                self.sizes, self.quiet_since = sizes, now
            elif now - self.quiet_since >= DRAIN_QUIET:
                return
            time.sleep(DRAIN_POLL)


def wait_drained(captures: Sequence[Capture]) -> None:
    """Wait until none of the captures' pcaps has grown for DRAIN_QUIET (see Drain): one
    wait for all of them, not one after the other."""
    Drain(captures).wait()


def stop_all(captures: Sequence[Capture], drain: Drain | None = None) -> None:
    """Stop several captures once they are drained: by `drain` if one watches them
    already, else by a watch that starts now (see Drain)."""
    (drain or Drain(captures)).wait()
    for capture in captures:  # all told first: they exit side by side
        capture._terminate()
    for capture in captures:
        capture._reap()


def _exits_within(proc: subprocess.Popen, timeout: float) -> bool:
    """Whether proc exits within timeout: its pidfd wakes the wait at once (Popen.wait with a
    timeout polls, sleeping up to 50 ms at a time)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return True  # gone already
    try:
        return bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)
