"""A progress bar for make, fed by its output lines (CC/LD/AR... as objects are built)."""

from __future__ import annotations

import sys
import time

STEPS = ("CC ", "AS ", "LD ", "AR ", "HOSTCC ", "HOSTLD ")
WIDTH = 30


class Progress:
    """Counts build steps against an estimate (the previous build's count, if known).

    On a terminal it redraws one line; otherwise (CI) it prints a line every 10%.
    """

    def __init__(self, expected: int | None, stream=sys.stdout):
        self.expected, self.stream, self.steps = expected, stream, 0
        self.tty = stream.isatty()
        self._last_decile, self._start = -1, time.monotonic()

    def feed(self, line: str) -> None:
        if line.lstrip().startswith(STEPS):
            self.steps += 1
            self._show()

    def _show(self) -> None:
        elapsed = time.monotonic() - self._start
        if not self.expected:  # a first build: no estimate, so count
            if self.tty and self.steps % 50 == 0:
                self.stream.write(f"\rbuilding: {self.steps} steps, {elapsed:.0f} s")
                self.stream.flush()
            elif not self.tty and self.steps % 500 == 0:
                print(f"building: {self.steps} steps, {elapsed:.0f} s", file=self.stream,
                      flush=True)
            return
        fraction = min(self.steps / self.expected, 1.0)
        if self.tty:
            bar = "#" * int(fraction * WIDTH)
            self.stream.write(f"\r[{bar:<{WIDTH}}] {fraction:4.0%} {self.steps}/{self.expected}"
                              f" steps, {elapsed:.0f} s")
            self.stream.flush()
        elif int(fraction * 10) > self._last_decile:
            self._last_decile = int(fraction * 10)
            print(f"building: {fraction:.0%} ({self.steps} steps, {elapsed:.0f} s)",
                  file=self.stream, flush=True)

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
