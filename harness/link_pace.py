"""How fast this kernel sends through a rate-limited link, for tests whose premise is that the
links, not the CPU, set the pace (how a scheduler splits data over paths).

Under emulation a debug kernel (KASAN, lockdep...) sends one subflow at a few Mbit/s:
through links of 20 Mbit/s the first link is never full, and the default scheduler rightly
keeps every byte on it. Such a test builds its topology with its link rates scaled by
`LinkPace.scale`:
- one subflow is sent through one link limited to the test's links together (their total
  rate); a kernel that carries KEEPS_UP of it runs the topology as written (scale 1);
- a slower one gets links that together take HEADROOM of what it carried, and the kernel
  must fill a link at that rate, measured again: its segments are as small as its pace
  makes them, so a measure over an unlimited veth (64 KB segments) says nothing of it.
The test's premise, thresholds and shares stay the same; its byte counts and application
rates scale with the links. The scale is said in the test's output and in the report.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness import traffic
from harness.errors import HarnessError
from harness.topology import Topology, build, load_named, with_link_impairment

KEEPS_UP = 0.8  # of a link's rate: the kernel fills it
HEADROOM = 0.5  # of what a slow kernel carried: the scaled links together
MEASURE_SECONDS = 3.0  # of sending; then what the socket still holds drains at the link's rate
MEASURE_TOPOLOGY = "single-path"


class PaceTooLow(HarnessError):
    pass


@dataclass(frozen=True)
class LinkPace:
    total_rate_bit: int  # the links of the test, together
    carried_bit: float  # one subflow through a link of that rate
    scale: float = 1.0  # of every link rate; 1 when the kernel keeps up
    scaled_carried_bit: float | None = None  # through a link of the scaled total rate

    def describe(self) -> str:
        measured = (f"one subflow carried {self.carried_bit / 1e6:.1f} Mbit/s through a "
                    f"{self.total_rate_bit / 1e6:g} Mbit/s link")
        if self.scale == 1.0:
            return f"links as written: {measured}"
        return (f"links scaled by {self.scale:.3f} for this kernel: {measured}, and "
                f"{self.scaled_carried_bit / 1e6:.2f} Mbit/s through a "
                f"{self.total_rate_bit * self.scale / 1e6:.2f} Mbit/s one")


def total_rate_bit(spec: Topology) -> int:
    """The rates of a topology's rate-limited links, added up."""
    total = sum(link.impair.rate_bit for link in spec.links
                if link.impair is not None and link.impair.rate_bit)
    if not total:
        raise ValueError(f"topology {spec.name} has no rate-limited link to scale")
    return total


def carried_through(rate_bit: int) -> float:
    """Bits per second one MPTCP subflow delivered through one link limited to rate_bit, as
    the receiver counted them (from the connection to the end of data)."""
    spec = with_link_impairment(load_named(MEASURE_TOPOLOGY), rate_bit=rate_bit)
    with build(spec) as topo:
        result = traffic.transfer(topo.ns("client"), topo.ns("server"),
                                  topo.addresses("server", 4)[0], seconds=MEASURE_SECONDS)
    if not result.intact:
        raise PaceTooLow(f"the pace measure's transfer through a {rate_bit} bit/s link "
                         f"arrived damaged: {result}")
    return result.received.mbit_per_s * 1e6


def measure(total_bit: int) -> LinkPace:
    """The pace of this kernel for a test whose links add up to total_bit."""
    carried = carried_through(total_bit)
    if carried >= KEEPS_UP * total_bit:
        return LinkPace(total_bit, carried)
    scaled_total = int(carried * HEADROOM)
    scaled_carried = carried_through(scaled_total)
    if scaled_carried < KEEPS_UP * scaled_total:
        raise PaceTooLow(f"this kernel carried {carried / 1e6:.2f} Mbit/s through a "
                         f"{total_bit / 1e6:g} Mbit/s link, then only "
                         f"{scaled_carried / 1e6:.2f} through one of {scaled_total / 1e6:.2f}: "
                         f"no link rate it fills was found")
    return LinkPace(total_bit, carried, scaled_total / total_bit, scaled_carried)

