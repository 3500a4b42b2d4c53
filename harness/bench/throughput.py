"""Throughput of one path against two paths on the `two-paths` topology (rate-limited links).

The same topology serves both cases: for one path the client's PM limit on additional
subflows is set to 0, for two paths it is restored, so only the number of subflows differs.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from harness import traffic
from harness.mptcp.pm import PathManager
from harness.topology import build, load_named

TOPOLOGY = "two-paths"
MB = 1_000_000


@dataclass(frozen=True)
class ThroughputResult:
    case: str
    runs_mbit: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs_mbit)

    def line(self) -> str:
        runs = ", ".join(f"{r:.1f}" for r in self.runs_mbit)
        return f"{self.case:>10}: median {self.median:7.1f} Mbit/s  (runs: {runs})"


def _one_run(topo, subflows: int, nbytes: int) -> float:
    result = traffic.transfer(topo.ns("client"), topo.ns("server"),
                              topo.addresses("server", 4)[0], nbytes=nbytes, subflows=subflows)
    if not result.intact:
        raise RuntimeError("benchmark transfer corrupted data")
    return result.received.mbit_per_s


def measure(runs: int = 5, nbytes: int = 50 * MB) -> list[ThroughputResult]:
    """Median receive throughput with one and with two subflows, `runs` transfers each."""
    with build(load_named(TOPOLOGY)) as topo, PathManager(topo.ns("client")) as pm:
        limit = pm.limits().subflows
        pm.set_limits(subflows=0)
        single = [_one_run(topo, 1, nbytes) for _ in range(runs)]
        pm.set_limits(subflows=limit)
        double = [_one_run(topo, 2, nbytes) for _ in range(runs)]
    return [ThroughputResult("one path", single), ThroughputResult("two paths", double)]
