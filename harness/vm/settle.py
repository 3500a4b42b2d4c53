"""The settle step (the guest-settle script beside this file), and what its output means.

Run in the guest after a command, a test or a selftest slot: it waits for the namespaces
the run created to go, for the kernel's deferred netns cleanup to finish, and on a kernel
with kmemleak scans for leaks. Splats logged until then, and the leaks, count against the
run. Two forms of the same steps: the script, which the guest shell of a command run from
the host (`Vm.run`) starts after it, and `settle_here`, which code already running in the
guest's Python (the pytest plugin after each test, the repro runner after each run) calls
in its own process.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from harness import netns
from harness.vm import oracle
from harness.wait import WaitTimeout, wait_until

SCRIPT = Path(__file__).with_name("guest-settle")
# Given to a command run with After: the file it creates once it ran the settle step after
# its last action (the pytest plugin, after the last test), so that it is not run again.
SETTLED_ENV = "MPTCP_LAB_SETTLED_FILE"
TIMEOUT = 120.0  # namespaces to go (10 s), two netns cleanups, kfree_rcu drain, two scans
NETNS_DIR = Path("/run/netns")
# the guest side, as guest-settle has them
NS_TIMEOUT_S = 10.0  # for the namespaces a run made to go
CLEANUP_TIMEOUT_S = 30.0  # for a sentinel's cleanup
KMEMLEAK = Path("/sys/kernel/debug/kmemleak")
KFREE_RCU_DRAIN_S = 6.0  # KFREE_DRAIN_JIFFIES (5 s) and a grace period


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


def settle_here(namespaces_before: list[str]) -> tuple[int, str]:
    """The settle step in this process (the guest), its status and report (see `splats`),
    as `After.result` gives them for the script: the steps of
    guest-settle, which says why each is needed, without starting a process. Under
    emulation each process start costs 0.1 s (0.5 s on the debug kernel), and the script
    starts at least three."""
    lines, status = [], 0
    left = _wait_namespaces_gone(set(namespaces_before), _ns_timeout())
    if left:
        lines.append(f"settle: namespaces left behind: {' '.join(left)}")
    try:
        for tag in "ab":
            _sentinel(tag)
    except (OSError, netns.NamespaceError, SettleError) as err:
        lines.append(f"settle: {err}")
        status = 1
    if os.access(KMEMLEAK, os.W_OK):
        lines.append(_kmemleak_scan())
    return status, "\n".join(line for line in lines if line).strip()


class SettleError(Exception):
    pass


def _ns_timeout() -> float:
    return float(os.environ.get("SETTLE_NS_TIMEOUT", NS_TIMEOUT_S))


def _wait_namespaces_gone(before: set[str], timeout: float) -> list[str]:
    """The named namespaces made since `before` that are still there after `timeout`."""
    def made_since() -> list[str]:
        return [name for name in named_namespaces() if name not in before]

    try:
        wait_until(lambda: not made_since(), timeout, "the run's namespaces to go")
    except WaitTimeout:
        return made_since()
    return []


def _sentinel(tag: str) -> None:
    """Destroy a namespace with a veth peer in this one, and wait until its cleanup has
    removed the peer: the netns workqueue is ordered, so the namespaces freed before it
    are cleaned up by then (the second sentinel makes sure of the batch, see guest-settle)."""
    peer = Path("/sys/class/net") / f"mls{os.getpid()}{tag}"
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        netns.in_new_namespace(lambda: _veth_to(home, peer.name))
    finally:
        os.close(home)
    try:
        wait_until(lambda: not peer.exists(), CLEANUP_TIMEOUT_S, "a sentinel's cleanup")
    except WaitTimeout:
        raise SettleError(f"the netns cleanup did not run within {CLEANUP_TIMEOUT_S:.0f} s"
                          ) from None


def _veth_to(namespace_fd: int, peer: str) -> None:
    """In the calling thread's namespace, a veth whose peer `peer` is in namespace_fd's."""
    from pyroute2 import IPRoute, NetlinkError

    with IPRoute() as ipr:
        try:
            ipr.link("add", ifname="p", kind="veth",
                     peer={"ifname": peer, "net_ns_fd": namespace_fd})
        except NetlinkError as err:
            raise SettleError(f"cannot make a sentinel's veth pair: {err}") from None


def _kmemleak_scan() -> str:
    """The new suspected leaks, after objects freed with kfree_rcu() are gone; forgotten
    once read."""
    time.sleep(KFREE_RCU_DRAIN_S)
    for _ in range(2):
        KMEMLEAK.write_text("scan\n")
    report = KMEMLEAK.read_text()
    KMEMLEAK.write_text("clear\n")
    return report
