"""Ctrl-C and SIGTERM: both stop a run, neither cuts a cleanup short."""

import os
import signal
import subprocess
import sys

import pytest

from harness import interrupts


def test_sigterm_raises_keyboard_interrupt():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        interrupts.stop_on_signals()
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_signal_during_a_held_cleanup_waits_for_its_end():
    done = []
    with pytest.raises(KeyboardInterrupt, match="SIGINT"), interrupts.held():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("cleanup finished")
    assert done == ["cleanup finished"]


def test_sigint_ignored_at_start_still_stops_the_process(tmp_path):
    """A background job of a non-interactive shell starts with SIGINT ignored."""
    code = ("import os, signal, sys; from harness import interrupts; "
            "interrupts.stop_on_signals(); "
            "sys.stdout.write('ready\\n'); sys.stdout.flush(); signal.pause()")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert child.stdout.readline() == "ready\n"
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=10) != 0  # KeyboardInterrupt, not ignored
