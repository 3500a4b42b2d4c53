"""Ctrl-C and SIGTERM as a user sends them: `invoke test --host` in a pseudo-terminal, the
interrupt typed (^C, which the terminal turns into SIGINT for the foreground process group)
or SIGTERM sent to invoke, at several moments of a test that builds a topology and moves
data. The run must stop within 5 s and leave no namespace or tcpdump behind."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import PROJECT_PREFIX
from harness.paths import PROJECT_ROOT

NETNS_DIR = Path("/run/netns")
STOP_WITHIN_S = 5.0
TEST = "test_subflow_endpoint_joins_and_both_subflows_carry_data"  # topology + transfer


def our_namespaces() -> set[str]:
    names = os.listdir(NETNS_DIR) if NETNS_DIR.is_dir() else []
    return {n for n in names if n.startswith(f"{PROJECT_PREFIX}-")}


def start_in_terminal(*args) -> tuple[subprocess.Popen, int]:
    """invoke as the foreground job of a new pseudo-terminal; returns it and the master fd."""
    master, slave = pty.openpty()

    def take_terminal():
        os.setsid()
        import fcntl
        import termios
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=PROJECT_ROOT,
                            stdin=slave, stdout=slave, stderr=slave, preexec_fn=take_terminal)
    os.close(slave)
    return proc, master


def drain(master: int, chunks: list[str]) -> None:
    """Read the terminal until it closes (a full terminal would block the run)."""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            return
        if not data:
            return
        chunks.append(data.decode(errors="replace"))


def wait_for_new_namespaces(before: set[str], proc, timeout=60.0) -> set[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        new = our_namespaces() - before
        if new:
            return new
        time.sleep(0.02)
    pytest.fail("the test never built its topology")


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
@pytest.mark.parametrize("delay", [0.0, 2.0], ids=["building", "mid-transfer"])
def test_an_interrupted_host_run_stops_and_leaves_nothing(mptcp_kernel, processes_named, how,
                                                         delay):
    before = our_namespaces()
    tcpdumps_before = processes_named("tcpdump")
    proc, master = start_in_terminal("test", "--host", "-k", TEST)
    chunks: list[str] = []
    reader = threading.Thread(target=drain, args=(master, chunks), daemon=True)
    reader.start()
    try:
        wait_for_new_namespaces(before, proc)
        time.sleep(delay)
        if how == "ctrl-c":
            os.write(master, b"\x03")
        else:
            proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        proc.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=10)
        os.close(master)
        output = "".join(chunks)
    assert proc.returncode != 0, output
    assert took < STOP_WITHIN_S, f"stopped {took:.1f} s after the {how}\n{output}"
    assert our_namespaces() - before == set(), output
    assert processes_named("tcpdump") - tcpdumps_before == set(), output
