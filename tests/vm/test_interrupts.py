"""Ctrl-C (SIGINT), SIGTERM, and SIGINT sent to the process group of a run started as a
background job (which starts with SIGINT ignored), in the middle of `invoke boot` and of
`invoke test`: the run stops promptly, and no QEMU process, VM directory or key outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from harness.kernel.build import remember_last_image
from harness.paths import PROJECT_ROOT
from harness.vm import machine

STOP_WITHIN_S = 5.0  # measured: 0.1 s (boot) to 0.5 s (test)


def start_invoke(cache, *args, as_background_job=False):
    env = {**os.environ, "INVOKE_CACHE_DIR": str(cache)}
    ignore_sigint = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) \
        if as_background_job else None
    return subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=as_background_job, preexec_fn=ignore_sigint)


def wait_for_console(cache, text, timeout=180.0):
    console = cache / "vm" / "console.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if console.exists() and text in console.read_text(errors="replace"):
            return
        time.sleep(0.1)
    pytest.fail(f"{text!r} never appeared in {console}")


def interrupt(proc, how: str) -> tuple[str, float]:
    """Stop proc as `how` says; its output and how long it took to end."""
    start = time.monotonic()
    if how == "group-sigint":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    return output, time.monotonic() - start


@pytest.mark.parametrize("how", ["sigint", "sigterm", "group-sigint"])
@pytest.mark.parametrize("command, reached", [
    (("boot",), "Linux version"),  # the kernel is booting, SSH not up yet
    (("test", "-k", "transfer"), "mptcp-lab: test start"),  # pytest runs in the guest
])
def test_an_interrupt_leaves_no_vm_behind(tmp_path, kernel_image, command, reached, how):
    remember_last_image(tmp_path, kernel_image)
    proc = start_invoke(tmp_path, *command, as_background_job=how == "group-sigint")
    try:
        wait_for_console(tmp_path, reached)
    finally:
        output, took = interrupt(proc, how)
    print(f"{' '.join(command)}: stopped {took:.1f} s after {how}")
    assert proc.returncode != 0, output
    assert took < STOP_WITHIN_S, f"stopped {took:.1f} s after {how}\n{output}"
    assert machine.processes_mentioning(tmp_path) == [], output
    assert not (tmp_path / "vm").exists()  # state, keys, sshd config: all gone
