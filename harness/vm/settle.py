"""The settle step (the guest-settle script beside this file), and what its output means.

Run in the guest after a command, a test or a selftest slot: it waits for the namespaces
the run created to go, for the kernel's deferred netns cleanup to finish, and on a kernel
with kmemleak scans for leaks. Splats logged until then, and the leaks, count against the
run. Used from the host (`Vm.run`) and inside the guest (the pytest plugin, per test).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness.vm import oracle

SCRIPT = Path(__file__).with_name("guest-settle")
TIMEOUT = 120.0  # namespaces to go (10 s), two netns cleanups, kfree_rcu drain, two scans
NETNS_DIR = Path("/run/netns")


def argv(namespaces_before: list[str], mark: str | None = None) -> list[str]:
    """The settle step's command; with `mark`, it writes that line to /dev/kmsg last."""
    return [str(SCRIPT), *(("--mark", mark) if mark else ()), *namespaces_before]


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
