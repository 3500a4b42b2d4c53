"""MIB counters of a network namespace (/proc/net/netstat, /proc/net/snmp), snapshot and diff.

MPTCP's own counters are the `MPTcpExt` group (net/mptcp/mib.c). The files are read through
/proc/thread-self so that the calling thread's namespace (see harness.netns.entered) is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.netns import entered

MIB_FILES = (Path("/proc/thread-self/net/netstat"), Path("/proc/thread-self/net/snmp"))


def parse_netstat(text: str) -> dict[str, dict[str, int]]:
    """Parse the paired header/value lines of /proc/net/netstat or /proc/net/snmp."""
    groups: dict[str, dict[str, int]] = {}
    lines = [line.split() for line in text.splitlines() if line.strip()]
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        group = header[0].rstrip(":")
        if values[0].rstrip(":") != group or len(header) != len(values):
            raise ValueError(f"malformed MIB line pair for group {group!r}")
        groups[group] = {name: int(v) for name, v in zip(header[1:], values[1:], strict=True)}
    return groups


@dataclass(frozen=True)
class MibSnapshot:
    """All MIB counters of one namespace at one moment: groups[group][name] -> value."""

    ns: str | None
    groups: dict[str, dict[str, int]]

    @property
    def mptcp(self) -> dict[str, int]:
        return self.groups.get("MPTcpExt", {})

    def get(self, name: str, group: str = "MPTcpExt") -> int:
        """A counter's value; counters the kernel does not print (older kernels) read as 0."""
        return self.groups.get(group, {}).get(name, 0)

    def has(self, name: str, group: str = "MPTcpExt") -> bool:
        return name in self.groups.get(group, {})

    def delta(self, later: MibSnapshot, group: str = "MPTcpExt") -> dict[str, int]:
        """Counters of `group` that moved between this snapshot and `later` (name -> change)."""
        before, after = self.groups.get(group, {}), later.groups.get(group, {})
        moved = {name: value - before.get(name, 0) for name, value in after.items()}
        return {name: change for name, change in moved.items() if change}


def snapshot(ns: str | None = None) -> MibSnapshot:
    """Read every MIB counter of namespace ns (None: the caller's namespace)."""
    groups: dict[str, dict[str, int]] = {}
    with entered(ns):
        for path in MIB_FILES:
            groups.update(parse_netstat(path.read_text()))
    return MibSnapshot(ns, groups)
