"""The kernel-health oracle: find splats (WARNING, BUG, Oops, KASAN, UBSAN, KFENCE, lockdep,
kmemleak, hung tasks, RCU stalls, soft lockups, panics) in kernel log text.

The input is console text ("[    2.739364] WARNING: ...") or /dev/kmsg records turned into
the same form. A splat starts at a line matching one of SPLAT_STARTS and runs to the
kernel's own end marker ("---[ end trace ... ]---"), the start of the next splat, one of our
own markers, or MAX_SPLAT_LINES, whichever comes first.

A SysRq dump of blocked tasks (which we ask for when a command hangs) is not a splat.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_SPLAT_LINES = 80
# printk's prefix: the timestamp, and the caller id ("[  T123]" a task, "[    C1]" a CPU) of
# a kernel with CONFIG_PRINTK_CALLER (the debug variant has it).
TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\](?:\[\s*[CT]\d+\])?\s?")
# Lines that our harness writes to the kernel log (see harness.vm.kmsg): never part of a splat.
MARKER_PREFIX = "mptcp-lab:"

# (kind, pattern on the line without its timestamp). Order matters: the first match names it.
SPLAT_STARTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern)) for kind, pattern in (
        ("KASAN", r"^BUG: KASAN: "),
        ("KFENCE", r"^BUG: KFENCE: "),
        ("soft lockup", r"^(watchdog: )?BUG: soft lockup"),
        ("hard lockup", r"^(watchdog: )?Watchdog detected hard LOCKUP"),
        ("BUG", r"^BUG: |^kernel BUG at "),
        ("Oops", r"^Oops: "),
        ("lockdep", r"^WARNING: (possible (circular|recursive) locking|inconsistent lock state"
                    r"|suspicious RCU usage|possible irq lock inversion|held lock freed"
                    r"|lock held when returning|bad unlock balance|Nested lock was not taken"
                    r"|possible deadlock)"),
        ("WARNING", r"^WARNING: "),
        ("UBSAN", r"^UBSAN: "),
        ("kmemleak", r"^unreferenced object 0x[0-9a-f]+ \(size \d+\)|"
                     r"^kmemleak: \d+ new suspected memory leaks"),
        ("hung task", r"^INFO: task .+ blocked for more than \d+ seconds"),
        ("RCU stall", r"^rcu: INFO: .*(detected stalls?|self-detected stall)"),
        ("panic", r"^Kernel panic - not syncing"),
    )
)
CUT_HERE = re.compile(r"^-+\[ cut here \]-+$")
END_MARKER = re.compile(r"^-+\[ end (trace|Kernel panic)")


@dataclass(frozen=True)
class Splat:
    kind: str  # one of the SPLAT_STARTS kinds
    title: str  # the line that names it, without timestamp
    lines: tuple[str, ...]  # the whole report as logged, timestamps included

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def __str__(self) -> str:
        return f"{self.kind}: {self.title}"


def strip_timestamp(line: str) -> str:
    return TIMESTAMP.sub("", line, count=1).rstrip()


def splat_kind(line: str) -> str | None:
    """The kind of splat that `line` (timestamp stripped) starts, or None."""
    for kind, pattern in SPLAT_STARTS:
        if pattern.search(line):
            return kind
    return None


def _continues_oops(kind: str | None, started: str, current: list[str]) -> bool:
    """'Oops: ...' right after 'BUG: unable to handle ...' belongs to the same report."""
    return kind == "BUG" and started == "Oops" and len(current) < 6


def find_splats(lines: Iterable[str]) -> list[Splat]:
    """Every splat in `lines`, in order. The 'BUG: ...' line that opens an oops and its
    'Oops: ...' line a few lines later make one report; the panic an oops causes is its own."""
    splats: list[Splat] = []
    current: list[str] = []
    kind = title = None
    pending_cut: str | None = None

    def close() -> None:
        nonlocal current, kind, title
        if kind is not None:
            splats.append(Splat(kind, title, tuple(current)))
        current, kind, title = [], None, None

    for raw in lines:
        raw = raw.rstrip("\n")
        body = strip_timestamp(raw)
        if body.startswith(MARKER_PREFIX):
            close()
            pending_cut = None
            continue
        if CUT_HERE.match(body):
            close()
            pending_cut = raw
            continue
        started = splat_kind(body)
        if started and not _continues_oops(kind, started, current):
            close()
            kind, title = started, body
            current = [pending_cut] if pending_cut else []
        pending_cut = None
        if kind is None:
            continue
        current.append(raw)
        if END_MARKER.match(body) or len(current) >= MAX_SPLAT_LINES:
            close()
    close()
    return splats
