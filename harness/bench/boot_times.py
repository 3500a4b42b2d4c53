"""Boot times of our kernel: from `invoke boot` to a usable SSH session, and for comparison
virtme-ng's own one-command cycle (`vng --run IMAGE --exec "uname -r"`) with the same kernel.

Each boot runs in a scratch state directory, so a VM the user has up is left alone; the
accelerator is chosen once (the KVM probe is not part of what is measured).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.bench import Timings
from harness.errors import HarnessError
from harness.vm import machine

VNG_TIMEOUT = 120.0


def _boot_to_ssh(image: Path, accel: str, scratch: Path) -> float:
    """Seconds from starting the VM to the first command's answer over SSH."""
    start = time.monotonic()
    try:
        vm = machine.boot(machine.BootOptions(image=image, accel=accel), scratch)
        if vm.guest.run("true", timeout=30).status != 0:
            raise HarnessError("the first command over SSH failed")
        return time.monotonic() - start
    finally:
        machine.halt(scratch)


def _vng_exec_cycle(image: Path, accel: str) -> float:
    """Seconds for virtme-ng to boot the kernel, run `uname -r` and power off.

    Without udev on the host, the guest has no /dev/virtio-ports links: virtme-ng runs the
    command with the console as its output (shown only with --verbose) and exits 255 as it
    gets no exit status back. The cycle counts if the console shows the command's output.
    """
    argv = [str(Path(sys.executable).with_name("vng")), "--run", str(image), "--force-9p",
            "--verbose", "--exec", "uname -r", *(["--disable-kvm"] if accel == "tcg" else [])]
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=VNG_TIMEOUT,
                          stdin=subprocess.DEVNULL, env=machine.vng_environment())
    elapsed = time.monotonic() - start
    output = proc.stdout + proc.stderr
    if not re.search(r"^\d+\.\d+\.\d+\S*$", output.split("starting script", 1)[-1], re.M):
        raise HarnessError(f"vng --exec 'uname -r' printed no release (exit {proc.returncode}):"
                           f"\n{output[-2000:]}")
    return elapsed


def measure(image: Path, cache: Path, runs: int = 5) -> list[Timings]:
    accel = machine.choose_accel(image, cache)
    with tempfile.TemporaryDirectory(prefix="bench-boot-", dir=cache) as scratch:
        ours = [_boot_to_ssh(image, accel, Path(scratch)) for _ in range(runs)]
    vng = [_vng_exec_cycle(image, accel) for _ in range(runs)]
    return [Timings(f"invoke boot to usable SSH ({accel})", ours),
            Timings(f"vng --exec 'uname -r' cycle ({accel})", vng)]
