"""gdb on the VM's kernel, through QEMU's gdb stub (invoke gdb).

Every VM has QEMU's gdb stub on a Unix socket in its private directory, not on a TCP port:
whoever connects owns the guest, and the guest is root over the host's filesystem. gdb gets
the build's vmlinux and the kernel's own helpers (scripts/gdb: lx-dmesg, lx-ps, lx-symbols,
...), which the build makes beside vmlinux when the kernel has CONFIG_GDB_SCRIPTS (the
debug variant). Attaching stops the guest; `continue` or detaching lets it go on.

`batch()` runs commands and detaches (the VM goes on), with breakpoints first: it waits,
up to its timeout, until one is hit, then prints where (`bt`) before the commands.
`interactive_argv()` is the session (attach, set the breakpoints, continue) that `batch()`
adds to, and what a person gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError
from harness.run import Result, run

SOCKET = "gdb.sock"
NEEDED_CONFIG = ("CONFIG_DEBUG_INFO", "CONFIG_GDB_SCRIPTS")
HELPERS = "vmlinux-gdb.py"


class GdbError(HarnessError):
    pass


def qemu_args(run_dir: Path) -> list[str]:
    return ["-gdb", f"unix:{run_dir / SOCKET},server=on,wait=off"]


def check_build(vmlinux: Path) -> Path:
    """The helpers of the build of vmlinux; a clear error if it cannot be debugged."""
    from harness.kernel.kconfig import options_lacking

    if missing := options_lacking(vmlinux.parent, NEEDED_CONFIG):
        raise GdbError(f"the kernel was built without {' and '.join(missing)}: gdb needs its "
                       f"debug info and the kernel's gdb helpers. Build the debug variant "
                       f"(invoke build --variant debug) and boot it")
    helpers = vmlinux.parent / HELPERS
    if not helpers.exists():
        raise GdbError(f"no {HELPERS} beside {vmlinux} (a build made before the gdb helpers "
                       f"were part of it): make -C {vmlinux.parent} scripts_gdb")
    return helpers


def interactive_argv(run_dir: Path, vmlinux: Path, breakpoints: Sequence[str] = ()
                     ) -> list[str]:
    helpers = check_build(vmlinux)
    argv = ["gdb", "-q", "-nx", "-iex", "set auto-load python-scripts off",
            "-iex", "set pagination off", str(vmlinux),
            "-ex", f"source {helpers}", "-ex", f"target remote {run_dir / SOCKET}"]
    for function in breakpoints:
        argv += ["-ex", f"break {function}"]
    if breakpoints:
        argv += ["-ex", "continue"]
    return argv


def batch(run_dir: Path, vmlinux: Path, commands: Sequence[str],
          breakpoints: Sequence[str] = (), timeout: float = 300.0) -> Result:
    """Attach, wait for a breakpoint (if any), run `commands`, detach. The Result holds
    gdb's output; a breakpoint not hit within `timeout` raises CommandError (gdb is
    killed: the stub then lets the guest go on)."""
    argv = interactive_argv(run_dir, vmlinux, breakpoints)
    if breakpoints:
        argv += ["-ex", "bt"]
    for command in commands:
        argv += ["-ex", command]
    argv += ["-ex", "delete", "-ex", "detach"]
    return run(["gdb", "-batch", *argv[1:]], timeout=timeout, check=False)
