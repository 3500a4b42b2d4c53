"""One build at a time in a cache.

Every build of Debian's source, whatever its variant or purpose, compiles from the same
patched working copy (`<cache>/src/<key>/patched`: a series is applied there in place, so
that the source path, and with it every object, stays the same). Two invocations building at
once, `invoke build` in one terminal and `invoke repro` in another, would apply their series
over each other's compile; a selftests build reads the same tree. Each make already uses
every core, so nothing is lost by taking turns.

A build holds an exclusive flock on `<cache>/build/.lock` and writes who it is into it. The
kernel drops the lock when the process ends, however it ends: nothing is left to clean up.
A second build waits for it, and says which process it waits for.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".lock"
_held: set[Path] = set()  # the locks this process holds: a nested build does not wait for itself


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def holder_line() -> str:
    """Who holds the lock, as the waiting process reads it."""
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "?"
    return f"pid {os.getpid()} ({command}) since {time.strftime('%H:%M:%S')}"


@contextmanager
def held(builds: Path, what: str, say: Callable[[str], None] = _say) -> Iterator[None]:
    """Hold the build lock of the cache whose build directories are under `builds` while
    `what` runs; wait for it (saying so) when another process has it."""
    path = (builds / LOCK_NAME).resolve()
    if path in _held:
        yield
        return
    builds.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            say(f"{what}: waiting for the build lock {path}, held by {holder}")
            fcntl.flock(lock, fcntl.LOCK_EX)  # Ctrl-C or SIGTERM interrupts the wait
        lock.truncate(0)
        lock.write(holder_line() + "\n")
        lock.flush()
        _held.add(path)
        try:
            yield
        finally:
            _held.discard(path)
            lock.truncate(0)
            fcntl.flock(lock, fcntl.LOCK_UN)
