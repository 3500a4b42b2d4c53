"""Ctrl-C and SIGTERM stop any run the same way, and never cut a cleanup short.

- Both raise KeyboardInterrupt in the main thread, so every `with` block and `finally`
  undoes what it did. SIGINT gets Python's handler back even when the process started
  with it ignored (a background job of a non-interactive shell ignores SIGINT, and Python
  then leaves it ignored: `kill -INT` to the process group did nothing).
- `held()` blocks both signals while a cleanup runs: a second Ctrl-C waits for it.
- A KeyboardInterrupt raised where Python cannot propagate it (a finalizer, a weakref
  callback: "Exception ignored in ...") would be lost, and the run would go on; it is
  raised again, as SIGINT, at the next point that can take it.
- `wait_for_child()` waits for a child process; interrupted, it passes the interrupt on
  once and waits (signals held) for the child to clean up, killing it only past a grace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
CHILD_CLEANUP_GRACE_S = 60.0


_installed_in: int | None = None  # the process whose SIGTERM is an interrupt


def _interrupt(signum, _frame):
    if os.getpid() != _installed_in:
        # a forked child (pyroute2 forks for namespaces) inherits the handler: it must die
        # as SIGTERM says, not run its copy of the parent's cleanups (a topology's teardown)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def stop_on_signals() -> None:
    """Make SIGINT and SIGTERM raise KeyboardInterrupt in this process (main thread only),
    and never lose one (see the module's doc)."""
    global _installed_in
    if threading.current_thread() is threading.main_thread():
        _installed_in = os.getpid()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
        if not getattr(sys.unraisablehook, "redelivers_interrupts", False):
            sys.unraisablehook = _redelivering(sys.unraisablehook)


REDELIVERY_DELAY_S = 0.05  # long enough for the finalizer to have returned


def _redelivering(previous):
    """An unraisable-exception hook that reports as `previous` does, then has a lost
    KeyboardInterrupt raised again: SIGINT, sent from a thread a moment later, so that the
    main thread takes it outside the finalizer (sent from here, it would be raised in this
    hook, and lost the same way)."""
    def hook(unraisable) -> None:
        previous(unraisable)
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and os.getpid() == _installed_in:
            resend = threading.Timer(REDELIVERY_DELAY_S, os.kill, (os.getpid(), signal.SIGINT))
            resend.daemon = True
            resend.start()

    hook.redelivers_interrupts = True
    return hook


@contextmanager
def held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM during the block (a cleanup): one that arrives meanwhile is
    raised as KeyboardInterrupt after it, unless the block is already ending in an error.

    The handlers are swapped rather than the signal mask: another thread (paramiko's) would
    take a blocked signal, and Python runs the handler in the main thread anyway."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {signum: signal.signal(signum, lambda s, _f: pending.append(s))
                for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if pending and sys.exc_info()[0] is None:
            raise KeyboardInterrupt(f"stopped by {signal.Signals(pending[0]).name}")


def wait_for_child(proc: subprocess.Popen, grace: float = CHILD_CLEANUP_GRACE_S) -> int:
    """proc's exit status. Interrupted: SIGINT to the child (in a session of its own, it got
    none from the terminal), wait up to `grace` for it to clean up, then re-raise."""
    try:
        return proc.wait()
    except KeyboardInterrupt:
        with held():
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise
