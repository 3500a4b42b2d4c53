"""Benchmarks run by `invoke bench`: medians of several runs, never asserted by tests."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Timings:
    """Seconds that several runs of one case took, reported by their median."""

    case: str
    runs_s: list[float]
    label_width: int = 34  # the case is right-aligned in this many columns

    @property
    def median(self) -> float:
        return statistics.median(self.runs_s)

    def line(self) -> str:
        runs = ", ".join(f"{r:.2f}" for r in self.runs_s)
        return f"{self.case:>{self.label_width}}: median {self.median:6.2f} s  (runs: {runs})"
