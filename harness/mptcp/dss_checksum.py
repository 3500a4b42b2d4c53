"""The DSS checksum (RFC 8684 3.3.1) checked against the data on the wire.

When a kernel counts a data checksum error (MPTcpExtDataCsumErr), the first question is who
is wrong: did the sender put a checksum that does not match the bytes it sent, or did the
receiver compute it over other bytes than the ones that arrived? A capture with the
payload answers it: each subflow's byte stream is put together from its segments, and the
checksum of every mapping is computed from those bytes and compared with the option's.

    python -m harness.mptcp.dss_checksum capture.pcap [...]
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.capture import DssMapping, Segment, read_pcap

SEQ_MOD = 1 << 32


def ones_complement_sum(data: bytes, start: int = 0) -> int:
    """The 16-bit ones' complement sum of `data` (big-endian words, odd byte padded)."""
    if len(data) % 2:
        data += b"\x00"
    total = start + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def dss_checksum(dsn: int, ssn: int, length: int, data: bytes) -> int:
    """The checksum a sender writes in a DSS option: over the mapping's data and the pseudo
    header (64-bit DSN, subflow sequence number, data-level length, zero checksum). `length`
    is the option's data-level length (a DATA_FIN counts one), `data` the bytes it maps."""
    header = struct.pack("!QIHH", dsn, ssn, length, 0)
    return ~ones_complement_sum(header, ones_complement_sum(data)) & 0xFFFF


Flow = tuple[str, int, str, int]  # source address and port, destination address and port


def flow_of(segment: Segment) -> Flow:
    return segment.src, segment.sport, segment.dst, segment.dport


def flow_name(flow: Flow) -> str:
    src, sport, dst, dport = flow
    return f"{src}:{sport} > {dst}:{dport}"


@dataclass
class SubflowStream:
    """One direction of a subflow: its bytes by the relative subflow sequence number of the
    DSS mappings (1 for the first byte after the SYN, or after the data the SYN carried: a
    fast open SYN's data is mapped implicitly, and the kernel counts from its end)."""

    isn: int  # the SYN's sequence number plus the length of the data it carried
    data: bytearray = field(default_factory=bytearray)
    known: bytearray = field(default_factory=bytearray)  # 1 where data holds a captured byte
    differing: list[int] = field(default_factory=list)  # offsets a later copy changed

    def add(self, segment: Segment) -> None:
        start = (segment.seq - self.isn) % SEQ_MOD
        payload = segment.payload
        end = start + len(payload)
        if end > len(self.data):
            grow = end - len(self.data)
            self.data += bytes(grow)
            self.known += bytes(grow)
        known = self.known[start:end]
        if 1 in known:  # a retransmission must repeat the bytes it covers again
            old = self.data[start:end]
            changed = [i for i, was in enumerate(known) if was and old[i] != payload[i]]
            if changed:
                self.differing.append(start + changed[0])
        self.data[start:end] = payload
        self.known[start:end] = b"\x01" * len(payload)

    def bytes_of(self, ssn: int, count: int) -> bytes | None:
        """The `count` bytes from relative sequence `ssn`; None if some were not captured."""
        if ssn + count > len(self.known) or 0 in self.known[ssn:ssn + count]:
            return None
        return bytes(self.data[ssn:ssn + count])


@dataclass(frozen=True)
class MappingCheck:
    flow: Flow
    mapping: DssMapping
    data_fin: bool
    computed: int | None  # None: the capture lacks some of its bytes, or the DSN is 32-bit

    @property
    def bad(self) -> bool:
        return self.computed is not None and self.computed != self.mapping.checksum

    def line(self) -> str:
        m = self.mapping
        computed = "unknown" if self.computed is None else f"{self.computed:#06x}"
        return (f"{flow_name(self.flow)} dsn {m.dsn} ssn {m.ssn} length {m.length}"
                f"{' +DATA_FIN' if self.data_fin else ''}: option {m.checksum:#06x},"
                f" data gives {computed}")


def streams(segments: Iterable[Segment]) -> dict[Flow, SubflowStream]:
    """The byte stream of every subflow direction whose SYN (or SYN-ACK) was captured."""
    found: dict[Flow, SubflowStream] = {}
    for segment in segments:
        flow = flow_of(segment)
        if "S" in segment.flags:
            found.setdefault(flow, SubflowStream(segment.seq + segment.payload_len))
        elif flow in found and segment.payload:
            found[flow].add(segment)
    return found


def check(segments: list[Segment],
          by_flow: dict[Flow, SubflowStream] | None = None) -> list[MappingCheck]:
    """Every distinct mapping with data and a checksum, checked against the captured bytes
    (`by_flow`: the segments' streams, if the caller has them already)."""
    by_flow = streams(segments) if by_flow is None else by_flow
    checks, seen = [], set()
    for segment in segments:
        flow = flow_of(segment)
        mapping = segment.dss_mapping
        if mapping is None or mapping.checksum is None or (flow, mapping) in seen:
            continue
        seen.add((flow, mapping))
        data_len = mapping.data_len
        if data_len <= 0:
            continue
        data = by_flow[flow].bytes_of(mapping.ssn, data_len) if flow in by_flow else None
        computed = None if data is None or not mapping.dsn64 else \
            dss_checksum(mapping.dsn, mapping.ssn, mapping.length, data)
        checks.append(MappingCheck(flow, mapping, segment.data_fin, computed))
    return checks


def report(path: Path) -> tuple[str, int]:
    """A summary of one capture's checksums, and the number of mappings found wrong."""
    segments = read_pcap(path)
    by_flow = streams(segments)
    checks = check(segments, by_flow)
    bad = [c for c in checks if c.bad]
    unknown = sum(c.computed is None for c in checks)
    lines = [f"{path}: {len(checks)} mappings with a checksum, {len(checks) - unknown} checked"
             f" against the captured data, {len(bad)} wrong, {unknown} not checkable"]
    lines += [f"  WRONG {c.line()}" for c in bad]
    for flow, stream in by_flow.items():
        if stream.differing:
            lines.append(f"  {flow_name(flow)}: a retransmission changed the bytes at relative"
                         f" sequence {', '.join(map(str, stream.differing[:5]))}")
    return "\n".join(lines), len(bad)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    wrong = 0
    for name in argv:
        text, bad = report(Path(name))
        print(text)
        wrong += bad
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
