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

import difflib
from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError
from harness.run import Result, run

SOCKET = "gdb.sock"
NEEDED_CONFIG = ("CONFIG_DEBUG_INFO", "CONFIG_GDB_SCRIPTS")
HELPERS = "vmlinux-gdb.py"
SYSTEM_MAP = "System.map"
LOOKUP_TIMEOUT = 120.0


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


def check_breakpoints(vmlinux: Path, breakpoints: Sequence[str]) -> None:
    """Refuse a breakpoint location gdb cannot find in vmlinux. Attached, gdb would only say
    "not defined" and go on waiting, up to the timeout, for a breakpoint that does not exist."""
    if not breakpoints:
        return
    argv = ["gdb", "-batch", "-nx", "-iex", "set auto-load python-scripts off", str(vmlinux)]
    for location in breakpoints:
        argv += ["-ex", f"info line {location}"]
    result = run(argv, timeout=LOOKUP_TIMEOUT, check=False)
    said = result.stdout + result.stderr
    unknown = [location for location in breakpoints
               if f'Function "{location}" not defined.' in said
               or f"No source file named {location.partition(':')[0]}." in said]
    if unknown:
        raise GdbError("no such function or source line in the kernel: " + "; ".join(
            f"{location}{_near_names(vmlinux, location)}" for location in unknown))


def _near_names(vmlinux: Path, location: str) -> str:
    system_map = vmlinux.parent / SYSTEM_MAP
    if not system_map.exists():
        return ""
    names = [line.split()[2] for line in system_map.read_text().splitlines()
             if line.count(" ") == 2]
    near = difflib.get_close_matches(location, names, n=3)
    return f" (did you mean {', '.join(near)}?)" if near else ""


def interactive_argv(run_dir: Path, vmlinux: Path, breakpoints: Sequence[str] = ()
                     ) -> list[str]:
    helpers = check_build(vmlinux)
    check_breakpoints(vmlinux, breakpoints)
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
