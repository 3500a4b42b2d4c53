"""KVM or software emulation: probe whether KVM really runs our kernel, don't trust /dev/kvm.

On some machines /dev/kvm is a nested hypervisor (PVM) that accepts QEMU's ioctls but hangs
an ordinary kernel at "Decompressing Linux...". The probe boots the kernel image under
`-accel kvm` and waits for its first "Linux version" console line; the verdict is cached
per host kernel, QEMU binary and /dev/kvm device, so only the first boot on a machine pays.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from harness.run import ToolMissing

QEMU = "qemu-system-x86_64"
PROBE_SECONDS = 5.0
KVM_DEVICE = Path("/dev/kvm")


def _probe_key() -> str:
    qemu = shutil.which(QEMU)
    if qemu is None:
        raise ToolMissing(QEMU)
    device = KVM_DEVICE.stat()
    return f"{platform.release()}|{qemu}:{os.stat(qemu).st_mtime_ns}|{device.st_rdev}"


def kvm_runs_kernel(image: Path, cache: Path) -> tuple[bool, str]:
    """(usable, reason): whether `-accel kvm` gets `image` to print its banner."""
    if not os.access(KVM_DEVICE, os.R_OK | os.W_OK):
        return False, f"{KVM_DEVICE} is missing or not accessible"
    verdicts = cache / "vm-kvm-probe.json"
    known = json.loads(verdicts.read_text()) if verdicts.exists() else {}
    key = _probe_key()
    if key not in known:
        known[key] = _probe(image)
        verdicts.parent.mkdir(parents=True, exist_ok=True)
        verdicts.write_text(json.dumps(known, indent=1))
    usable, reason = known[key]
    return usable, reason


def _probe(image: Path) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix="mlab-kvm-probe-") as tmp:
        console = Path(tmp) / "console"
        argv = [QEMU, "-accel", "kvm", "-cpu", "host", "-m", "256", "-smp", "1",
                "-display", "none", "-nodefaults", "-no-reboot", "-serial", f"file:{console}",
                "-kernel", str(image), "-append", "console=ttyS0 panic=-1 init=/nonexistent"]
        qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + PROBE_SECONDS
            while time.monotonic() < deadline:
                if console.exists() and b"Linux version" in console.read_bytes():
                    return True, "KVM boots the kernel"
                if qemu.poll() is not None:
                    error = qemu.stderr.read().decode(errors="replace").strip()
                    return False, f"QEMU with -accel kvm exited: {error[-200:]}"
                time.sleep(0.05)
            text = console.read_text(errors="replace") if console.exists() else ""
            last = text.strip().splitlines()[-1:] or ["(nothing)"]
            return False, (f"under -accel kvm the kernel printed no banner within "
                           f"{PROBE_SECONDS:.0f} s (last console line: {last[0]!r})")
        finally:
            qemu.kill()
            qemu.wait()
