"""How fast this kernel sends through a test's own topology, for tests whose premise is that
the links, not the CPU, set the pace (how a scheduler splits data over paths).

Under emulation a debug kernel (KASAN, lockdep...) sends a few Mbit/s: through links of
20 Mbit/s the first link is never full, and the default scheduler rightly keeps every byte
on it. Such a test builds its topology with its link rates scaled by `LinkPace.scale`.

The measure is taken in the test's topology itself, for the cost of a byte depends on it: on
the debug kernel one link between two namespaces carried 6 to 35 Mbit/s, the same client
through a router 4 to 6, and less again with every link captured as a test's are. So:
- the topology is built with each rate-limited link at the rate of the test's links together
  (their delays, jitter and loss left out: the measure is of the CPU, not of slow start over
  a long round trip), captured as the test's will be, and a connection sends for
  MEASURE_SECONDS; a kernel whose receiver counted KEEPS_UP of that rate runs the topology as
  written (scale 1);
- a slower one is measured again with links that together take HEADROOM of what it carried,
  and lowered again if it does not fill those either (its segments are as small as its pace
  makes them, so a slower link costs more CPU a byte);
- at each rate CONNECTIONS connections run one after the other, and the slowest counts: on
  the debug kernel a connection has two paces. While a link's queue holds data, the rest of
  the path runs from its timer and the sender only sends; while it is empty, the sender's
  own system call carries each segment through the whole topology and into the receiver's
  TCP, and costs several times the CPU a byte (perf in the guest, `two-paths` with each link
  at 13 Mbit/s: 48 % of the CPUs in the sender for 5.6 Mbit/s, against 12 % for 24.6). So a
  connection that starts slow stays slow (in one boot 14 connections of 24 carried 5.6 to
  16.1 Mbit/s, the others 18.4 to 25.3). Of 8 connections the slowest was mostly a slow
  one on the debug kernel (2.6 to 7.9 Mbit/s at 40), and half of that is a rate even a slow
  connection fills, after which its queue makes it fast: links of 1.66 and 3.3 Mbit/s each
  were filled by 8 connections of 8, those of 6.5 by 7 of 8. When the slowest was a fast
  one, the next rate caught a slow one and was lowered again (`two-paths`: 20.68 at 40,
  4.91 at 10.34, then 4.41 filled 2.46);
- a test's byte counts scale with its links, but its transfer no lower than
  LEAST_SCALED_BYTES (bytes_scale): at a debug kernel's scale of 0.03 a transfer of 4 MB
  became 112 kB, which the sockets' buffers took at once and roundrobin sent as its first
  turn (64 KiB) on one path; how the data split was then set by the first push, not by the
  links over time (README: the paced tests on the debug kernel);
- a test whose application is paced (its premise is a pace, not a bulk transfer) is measured
  with a sender paced at the links' rate, as its own is: a paced sender writes small chunks,
  and on the debug kernel the cost is more the write than the byte (`asymmetric-paths`:
  three bulk connections carried at least 34.8 Mbit/s, then the test's application paced at
  28 sent 9.4).
The test's premise, thresholds and shares stay the same; its byte counts and application
rates scale with the links. The scale is said in the test's output and in the report.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import NamedTuple

from harness import traffic
from harness.capture import stop_all
from harness.errors import HarnessError
from harness.evidence import link_captures
from harness.topology import Impairment, Topo, Topology, build

KEEPS_UP = 0.8  # of the links' rate: the kernel fills them
HEADROOM = 0.5  # of what a slow kernel carried: the scaled links together
MEASURE_SECONDS = 1.5  # of sending; then what the socket still holds drains at the link's rate
MAX_MEASURES = 4
CONNECTIONS = 8  # at each rate, in one build: the slowest counts
LEAST_SCALED_BYTES = 1_000_000  # of a test's transfer: 16 roundrobin turns of 64 KiB


class LinkPaceError(HarnessError):
    pass


class Measure(NamedTuple):
    link_rate_bit: int  # each rate-limited link's, in that measure
    slowest_bit: float  # what the slowest of its CONNECTIONS connections carried, per second

    @property
    def filled(self) -> bool:
        return self.slowest_bit >= KEEPS_UP * self.link_rate_bit


@dataclass(frozen=True)
class LinkPace:
    topology: str
    total_rate_bit: int  # the links of the test, together
    paced_app: bool  # measured with a sender paced at the links' rate, not a bulk one
    measures: tuple[Measure, ...]  # in order; the last filled its links (unless in an error)

    @property
    def scale(self) -> float:
        """Of every link rate: 1 when the kernel kept up with the links as written."""
        return self.measures[-1].link_rate_bit / self.total_rate_bit

    def describe(self) -> str:
        first, *then = [f"{carried / 1e6:.2f} Mbit/s with each link at {rate / 1e6:.2f}"
                        f" (slowest of {CONNECTIONS})" for rate, carried in self.measures]
        sender = "an application paced at the links' rate" if self.paced_app else "a bulk sender"
        measured = f"{self.topology} carried {', then '.join([first, *then])}, from {sender}"
        if self.scale == 1.0:
            return f"links as written: {measured}"
        return f"links scaled by {self.scale:.3f} for this kernel: {measured}"


def bytes_scale(scale: float, transfer: int) -> float:
    """The scale of a test's byte counts, transfer its transfer as written: the links' scale,
    raised so that the transfer stays at least LEAST_SCALED_BYTES (it then lasts longer, in
    the links' time, than as written), and never above 1."""
    return min(1.0, max(scale, LEAST_SCALED_BYTES / transfer))


def total_rate_bit(spec: Topology) -> int:
    """The rates of a topology's rate-limited links, added up."""
    total = sum(link.impair.rate_bit for link in spec.links
                if link.impair is not None and link.impair.rate_bit)
    if not total:
        raise ValueError(f"topology {spec.name} has no rate-limited link to scale")
    return total


def through_links_at(spec: Topology, rate_bit: int) -> Topology:
    """spec with each rate-limited link limited to rate_bit and nothing else (no delay, jitter
    or loss); the other links as they are."""
    links = tuple(replace(link, impair=Impairment(rate_bit=rate_bit))
                  if link.impair is not None and link.impair.rate_bit else link
                  for link in spec.links)
    return replace(spec, links=links)


@contextmanager
def links_at(spec: Topology, rate_bit: int, captured: bool = False) -> Iterator[Topo]:
    """spec built with each rate-limited link at rate_bit (through_links_at); captured: every
    link captured as a test's evidence has it."""
    with ExitStack() as stack:
        topo = stack.enter_context(build(through_links_at(spec, rate_bit)))
        if captured:
            captures = [capture for _name, capture in link_captures(topo)]
            for capture in captures:
                stack.callback(capture.close)
                capture.start()
            stack.callback(stop_all, captures)
            for capture in captures:
                capture.wait_ready()
        yield topo


def carried_by(topo: Topo, rate_bit: int, paced_app: bool = False) -> float:
    """Bits per second one connection from topo's client to its server delivered, as the
    receiver counted them (from the connection to the end of data); paced_app: the sender
    paced at rate_bit (traffic.Sender.send), else as fast as the socket takes."""
    result = traffic.transfer(topo.ns("client"), topo.ns("server"),
                              topo.addresses("server", 4)[0], seconds=MEASURE_SECONDS,
                              rate_bit=rate_bit if paced_app else None)
    if not result.intact:
        raise LinkPaceError(f"the pace measure's transfer through {topo.name} with links of "
                            f"{rate_bit} bit/s arrived damaged: {result}")
    return result.received.mbit_per_s * 1e6


def slowest_through(spec: Topology, rate_bit: int, captured: bool, paced_app: bool) -> Measure:
    """The slowest of CONNECTIONS connections one after the other in one build of the
    topology, each link at rate_bit."""
    with links_at(spec, rate_bit, captured) as topo:
        return Measure(rate_bit, min(carried_by(topo, rate_bit, paced_app)
                                     for _ in range(CONNECTIONS)))


def measure(spec: Topology, captured: bool = False, paced_app: bool = False) -> LinkPace:
    """The pace of this kernel in spec: the links as written if the topology carries the
    rate of its links together with each link at that rate, else HEADROOM of what it
    carried, measured again (a lower pace makes smaller segments, each costing as much CPU),
    until the kernel fills the links it is given. paced_app: for a test whose application
    is paced; the measure's sender is paced at the links' rate too."""
    total = total_rate_bit(spec)
    measures = [slowest_through(spec, total, captured, paced_app)]
    while not measures[-1].filled:
        if len(measures) == MAX_MEASURES:
            unfilled = LinkPace(spec.name, total, paced_app, tuple(measures))
            raise LinkPaceError(f"this kernel filled none of the links it was measured through: "
                                f"{unfilled.describe()}")
        lowered = int(measures[-1].slowest_bit * HEADROOM)
        measures.append(slowest_through(spec, lowered, captured, paced_app))
    return LinkPace(spec.name, total, paced_app, tuple(measures))
