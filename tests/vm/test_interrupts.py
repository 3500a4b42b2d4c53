"""Ctrl-C (SIGINT) in the middle of `invoke boot` and of `invoke test`: no QEMU process, VM
directory or key may outlive the command."""

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


def start_invoke(cache, *args):
    env = {**os.environ, "INVOKE_CACHE_DIR": str(cache)}
    return subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_console(cache, text, timeout=180.0):
    console = cache / "vm" / "console.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if console.exists() and text in console.read_text(errors="replace"):
            return
        time.sleep(0.1)
    pytest.fail(f"{text!r} never appeared in {console}")


def interrupt(proc) -> str:
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    return output


@pytest.mark.parametrize("command, reached", [
    (("boot",), "Linux version"),  # the kernel is booting, SSH not up yet
    (("test", "-k", "transfer"), "mptcp-lab: test start"),  # pytest runs in the guest
])
def test_ctrl_c_leaves_no_vm_behind(tmp_path, kernel_image, command, reached):
    remember_last_image(tmp_path, kernel_image)
    proc = start_invoke(tmp_path, *command)
    try:
        wait_for_console(tmp_path, reached)
    finally:
        output = interrupt(proc)
    assert proc.returncode != 0, output
    assert machine.processes_mentioning(tmp_path) == [], output
    assert not (tmp_path / "vm").exists()  # state, keys, sshd config: all gone
