"""How fast this kernel sends through a rate-limited link, for tests whose premise is that the
links, not the CPU, set the pace (how a scheduler splits data over paths).

Under emulation a debug kernel (KASAN, lockdep...) sends one subflow at a few Mbit/s:
through links of 20 Mbit/s the first link is never full, and the default scheduler rightly
keeps every byte on it. Such a test builds its topology with its link rates scaled by
`LinkPace.scale`:
- one subflow is sent through one link limited to the test's links together (their total
  rate); a kernel that carries KEEPS_UP of it runs the topology as written (scale 1);
- a slower one gets links that together take HEADROOM of what it carried, and the kernel
  must fill a link at that rate, measured again (and lowered again if it does not: its
  segments are as small as its pace makes them, so a slower link costs more CPU a byte,
  and a measure over an unlimited veth, 64 KB segments, says nothing of it).
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
MAX_MEASURES = 4


class LinkPaceError(HarnessError):
    pass


@dataclass(frozen=True)
class LinkPace:
    total_rate_bit: int  # the links of the test, together
    measures: tuple[tuple[int, float], ...]  # (a link's rate, what one subflow carried)

    @property
    def scale(self) -> float:
        """Of every link rate: 1 when the kernel kept up with the links as written."""
        return self.measures[-1][0] / self.total_rate_bit

    def describe(self) -> str:
        first, *then = [f"{carried / 1e6:.2f} Mbit/s through {rate / 1e6:.2f}"
                        for rate, carried in self.measures]
        measured = f"one subflow carried {', then '.join([first, *then])}"
        if self.scale == 1.0:
            return f"links as written: {measured}"
        return f"links scaled by {self.scale:.3f} for this kernel: {measured}"


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
        raise LinkPaceError(f"the pace measure's transfer through a {rate_bit} bit/s link "
                         f"arrived damaged: {result}")
    return result.received.mbit_per_s * 1e6


def measure(total_bit: int) -> LinkPace:
    """The pace of this kernel for a test whose links add up to total_bit: the links as
    written if one subflow fills a link of that rate, else the rate HEADROOM of what it
    carried, measured again (a lower pace makes smaller segments, each costing as much CPU),
    until the kernel fills the link it is given."""
    measures = [(total_bit, carried_through(total_bit))]
    while measures[-1][1] < KEEPS_UP * measures[-1][0]:
        if len(measures) == MAX_MEASURES:
            raise LinkPaceError(f"this kernel filled none of the links it was measured through: "
                             f"{LinkPace(total_bit, tuple(measures)).describe()}")
        rate = int(measures[-1][1] * HEADROOM)
        measures.append((rate, carried_through(rate)))
    return LinkPace(total_bit, tuple(measures))
