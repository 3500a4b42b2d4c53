"""Which selftest slots a run is made of, and how the guest starts one.

A slot is one script of the suite, or one mptcp_join.sh test group, with its arguments.
Kept apart from the runner (harness.runs.selftests), which talks to the VM: the guest's
reproduction runner (harness.repro.guest) starts selftest steps with `command_line` and
must not import the host's SSH and coverage machinery to do so.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.kernel.selftests_build import InstalledSuite

JOIN = "mptcp_join.sh"
GROUP_ENTRY = re.compile(r"^\s*([A-Za-z0-9])@(\w+)\s*$")


class SelftestError(HarnessError):
    pass


@dataclass(frozen=True)
class Slot:
    script: str
    args: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return shlex.join((self.script, *self.args))


def parse_only(entries: list[str], suite: InstalledSuite) -> list[Slot]:
    """`--only` entries ("diag.sh", "mptcp_join.sh -f -s", "mptcp_join.sh 42") as slots."""
    slots = []
    for entry in entries:
        script, *args = shlex.split(entry)
        if script not in suite.scripts:
            raise SelftestError(f"--only {entry!r}: no script {script!r} in the suite "
                                f"({', '.join(suite.scripts)})")
        slots.append(Slot(script, tuple(args)))
    return slots


def default_slots(suite: InstalledSuite) -> list[Slot]:
    """Every script of the suite; mptcp_join.sh as one slot per test group."""
    slots = []
    for script in suite.scripts:
        if script == JOIN:
            slots += [Slot(JOIN, (f"-{letter}",)) for letter, _ in join_groups(suite)]
        else:
            slots.append(Slot(script))
    return slots


def join_groups(suite: InstalledSuite) -> list[tuple[str, str]]:
    """(option letter, group name) of mptcp_join.sh, read from the script's own table."""
    text = (suite.directory / JOIN).read_text()
    table = re.search(r"^all_tests_sorted=\(\n(.*?)^\)", text, re.M | re.S)
    groups = [m.groups() for line in (table.group(1).splitlines() if table else [])
              if (m := GROUP_ENTRY.match(line))]
    if not groups:
        raise SelftestError(f"cannot read the test groups of {suite.directory / JOIN} "
                            f"(no all_tests_sorted table): run it whole with --only {JOIN}")
    return groups


def command_line(directory: Path, slot: Slot) -> list[str]:
    """How the guest starts the slot, in the suite's directory.

    A script installed without its exec bit runs through its `#!` interpreter, as the
    kselftest runner does: Debian's 6.12 tarball ships mptcp_connect_mmap.sh,
    mptcp_connect_sendfile.sh and mptcp_connect_checksum.sh as mode 644. Without a `#!`
    line it is started as is and fails with the shell's "Permission denied".
    """
    script = directory / slot.script
    started = [f"./{slot.script}", *slot.args]
    if os.access(script, os.X_OK):
        return started
    with script.open() as text:
        first_line = text.readline().rstrip("\n")
    if not first_line.startswith("#!"):
        return started
    return [*shlex.split(first_line[2:]), *started]
