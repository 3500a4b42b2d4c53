"""The selftests' own traffic captures (`invoke selftests --capture`).

Three scripts of the suite can record their traffic: given `-c`, mptcp_connect.sh (and the
mmap, sendfile and checksum forms, which pass their arguments on), mptcp_join.sh and
simult_flows.sh start a tcpdump per test and namespace, writing the pcaps into their working
directory. That directory is the suite's install, read-only in the guest, so a captured
attempt runs in a copy of the install in the VM's exchange directory. Its pcaps are moved
into the run's evidence (`<slot>/attempt-N-pcaps/`), and deleted again when the slot passes.

The scripts choose what tcpdump records (whole packets); what is kept is capped per attempt.
Capturing costs time: each test waits a second for its tcpdump to start and one to stop.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CAPTURING_SCRIPTS = frozenset({
    "mptcp_connect.sh", "mptcp_connect_mmap.sh", "mptcp_connect_sendfile.sh",
    "mptcp_connect_checksum.sh", "mptcp_join.sh", "simult_flows.sh"})
CAPTURE_OPTION = "-c"
KEEP_LIMIT_BYTES = 256 * 2**20  # the pcaps kept of one attempt, at most
DROPPED = "dropped.txt"  # in the pcaps directory: the captures left out by the cap


@dataclass
class Capture:
    cwd: Path  # where the script runs
    options: tuple[str, ...] = ()  # before the slot's own arguments
    pcaps: tuple[Path, ...] = ()  # what the attempt captured, once it ended


@contextmanager
def attempt(suite_directory: Path, script: str, scratch: Path,
            target: Path | None) -> Iterator[Capture]:
    """An attempt of `script`, capturing into target when given and the script can: in a
    copy of the install under scratch, with `-c`; after it, its pcaps in target and the copy
    removed. Without capture: the suite's directory, as it is.

    An attempt that raised (an interrupt, a hang kept for inspection: the script may still
    run in the copy) leaves the copy where it is, in the VM's exchange directory, which goes
    with the VM."""
    if target is None or script not in CAPTURING_SCRIPTS:
        yield Capture(suite_directory)
        return
    capture = Capture(prepare(suite_directory, scratch), (CAPTURE_OPTION,))
    yield capture
    capture.pcaps = take(capture.cwd, scratch, target)


def prepare(suite_directory: Path, scratch: Path) -> Path:
    """A writable copy of the suite's install (the scripts source ../lib.sh) under scratch;
    the copy's directory of the suite, where the script runs."""
    install = suite_directory.parents[1]  # <install>/net/mptcp
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(install, scratch, symlinks=True)
    return scratch / suite_directory.relative_to(install)


def take(workdir: Path, scratch: Path, target: Path) -> tuple[Path, ...]:
    """Move the pcaps the attempt wrote in workdir into target (up to KEEP_LIMIT_BYTES, by
    name; the others are listed in DROPPED), remove the copy; the pcaps kept."""
    pcaps = sorted(workdir.glob("*.pcap"))
    kept, dropped, total = [], [], 0
    for pcap in pcaps:
        size = pcap.stat().st_size
        if total + size > KEEP_LIMIT_BYTES:
            dropped.append(f"{pcap.name} {size} bytes")
            continue
        total += size
        target.mkdir(parents=True, exist_ok=True)
        kept.append(Path(shutil.move(str(pcap), target / pcap.name)))
    if dropped:
        target.mkdir(parents=True, exist_ok=True)
        (target / DROPPED).write_text(
            f"over the {KEEP_LIMIT_BYTES} bytes kept per attempt:\n" + "\n".join(dropped) + "\n")
    shutil.rmtree(scratch, ignore_errors=True)
    return tuple(kept)


def discard(pcaps: tuple[Path, ...]) -> None:
    """The captures of a slot that passed: not evidence of anything. The directories that
    held them go too, once empty (the slot's, the run's)."""
    for directory in {p.parent for p in pcaps}:
        shutil.rmtree(directory, ignore_errors=True)
        for parent in directory.parents[:2]:
            try:
                parent.rmdir()
            except OSError:  # not empty: other evidence is there
                break
