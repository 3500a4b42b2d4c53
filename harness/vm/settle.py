"""The settle step (the guest-settle script beside this file), and what its output means.

Run in the guest after a command, a test or a selftest slot: it waits for the namespaces
the run created to go, for the kernel's deferred netns cleanup to finish, and on a kernel
with kmemleak scans for leaks. Splats logged until then, and the leaks, count against the
run. Used from the host (`Vm.run`) and inside the guest (the pytest plugin, per test).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.vm import oracle

SCRIPT = Path(__file__).with_name("guest-settle")
# Given to a command run with After: the file it creates once it ran the settle step after
# its last action (the pytest plugin, after the last test), so that it is not run again.
SETTLED_ENV = "MPTCP_LAB_SETTLED_FILE"
TIMEOUT = 120.0  # namespaces to go (10 s), two netns cleanups, kfree_rcu drain, two scans
NETNS_DIR = Path("/run/netns")


def argv(namespaces_before: list[str], mark: str | None = None) -> list[str]:
    """The settle step's command; with `mark`, it writes that line to /dev/kmsg last."""
    return [str(SCRIPT), *(("--mark", mark) if mark else ()), *namespaces_before]


@dataclass(frozen=True)
class After:
    """The settle step run by the same guest shell as the command it follows (one SSH round
    trip instead of three): that shell lists the namespaces there before the command, runs
    the command, notes that it ended, runs the settle step with its report and exit status
    written to files in the VM's exchange directory, which the host reads directly, and
    exits with the command's status."""

    directory: Path  # the exchange directory (the same path in the guest)
    name: str  # unique among the commands of this host process

    @property
    def report(self) -> Path:
        return self.directory / f"{self.name}.settle"

    @property
    def status(self) -> Path:
        return self.directory / f"{self.name}.settle-status"

    @property
    def command_ended(self) -> Path:
        return self.directory / f"{self.name}.ended"

    def around(self, command: str, mark: str | None = None) -> str:
        """The guest shell's line: `command` (a shell line), then the settle step (which
        writes `mark` to /dev/kmsg last). The command finds in $MPTCP_LAB_SETTLED_FILE
        where to say that it settled after its last action (see guest-settle)."""
        before, settled = f"/run/{self.name}.netns-before", f"/run/{self.name}.settled"
        q = shlex.quote
        marking = f"--mark {q(mark)} " if mark else ""
        # the shell's own glob and builtins: under emulation a process start costs 0.1 s
        listing = f'for p in {NETNS_DIR}/*; do [ -e "$p" ] && echo "${{p##*/}}"; done'
        return (f"{listing} > {q(before)}; "
                f"(export {SETTLED_ENV}={q(settled)}; {command}); status=$?; "
                f": > {q(str(self.command_ended))}; "
                f"{q(str(SCRIPT))} {marking}--before-file {q(before)} --settled-file "
                f"{q(settled)} > {q(str(self.report))} 2>&1; echo $? > {q(str(self.status))}; "
                f"exit $status")

    def result(self) -> tuple[int, str]:
        """(the settle step's exit status, its output); the files are removed. A settle step
        that left no status (cut, or never reached) is a failure."""
        try:
            status = int(self.status.read_text().strip() or 1)
        except (OSError, ValueError):
            status = 1
        try:
            text = self.report.read_text(errors="replace")
        except OSError:
            text = "settle: the settle step left no report"
        self.discard()
        return status, text

    def discard(self) -> None:
        for path in (self.report, self.status, self.command_ended):
            path.unlink(missing_ok=True)


def splats(status: int, output: str) -> list[oracle.Splat]:
    """The leaks the settle step reported; a netns cleanup that never ran counts as one too."""
    found = oracle.find_splats(output.splitlines())
    if status != 0:
        found.append(oracle.Splat("settle", f"the settle step failed (exit {status})",
                                  tuple(output.splitlines())))
    return found


# ---- inside the guest ----
def named_namespaces() -> list[str]:
    return sorted(os.listdir(NETNS_DIR)) if NETNS_DIR.is_dir() else []


def settle_here(namespaces_before: list[str]) -> tuple[list[oracle.Splat], str]:
    """Run the settle step on this machine (the guest): its splats and its report."""
    try:
        done = subprocess.run(argv(namespaces_before), capture_output=True, text=True,
                              timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        text = f"settle: did not finish within {TIMEOUT:.0f} s"
        return splats(1, text), text
    text = (done.stdout + done.stderr).strip()
    return splats(done.returncode, text), text
