"""What the running kernel can carry, and how far the topologies' rate limits scale to it.

The shipped topologies' rate limits (two-paths: two 20 Mbit/s links) were chosen for our
normal kernel under software emulation, which carries about REFERENCE_MBIT over one veth:
the links, not the CPU, limit throughput, and tests of schedulers and joins depend on that.
A debug kernel (KASAN, kmemleak, lockdep, slub debug) carries a fraction of it, so its CPU
becomes the bottleneck and how data splits over paths says nothing about the scheduler.
Such a kernel runs the tests with every rate limit, and every paced rate in a test, scaled
down by a power of two until the links are the bottleneck again. The scale is measured at
the start of the session that needs it and printed with the results: never a silent
loosening of a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness import topology, traffic
from harness.errors import HarnessError

REFERENCE_MBIT = 65.0  # our normal kernel under TCG, one MPTCP connection over one veth
NOISE = 0.75  # a kernel within a quarter of the reference runs the rates as written
SMALLEST_SCALE = 1 / 64
MEASURE_SECONDS = 1.5
MEASURE_TOPOLOGY = "single-path"  # one unimpaired link


@dataclass(frozen=True)
class LinkScale:
    capacity_mbit: float  # what one MPTCP connection moved over an unimpaired veth
    factor: float  # applied to every rate limit and paced rate

    def describe(self) -> str:
        seen = f"this kernel carried {self.capacity_mbit:.1f} Mbit/s over one unimpaired veth"
        if self.factor == 1:
            return f"link rates as written ({seen})"
        return (f"link rates and paced rates scaled x1/{round(1 / self.factor)}: {seen}, "
                f"the topologies' rates are meant for at least "
                f"{REFERENCE_MBIT * NOISE:.0f} Mbit/s")


def factor_for(capacity_mbit: float) -> float:
    """1, 1/2, 1/4...: the largest factor at which the kernel keeps up with the links."""
    factor = 1.0
    while capacity_mbit < REFERENCE_MBIT * NOISE * factor and factor > SMALLEST_SCALE:
        factor /= 2
    return factor


def measure() -> LinkScale:
    """Send for MEASURE_SECONDS over a fresh single-path topology; the receiver's rate."""
    with topology.build(topology.load_named(MEASURE_TOPOLOGY)) as topo:
        result = traffic.transfer(topo.ns("client"), topo.ns("server"),
                                  topo.addresses("server", 4)[0], seconds=MEASURE_SECONDS)
    if not result.intact:
        raise HarnessError("the capacity measurement's transfer arrived corrupted")
    capacity = result.received.mbit_per_s
    return LinkScale(capacity, factor_for(capacity))
