"""The pace measure behind paced_links: what a test's topology carries on the running kernel
(the host's here) with its links opened to a rate, and topologies with their rates scaled."""

from contextlib import contextmanager

import pytest

from harness import link_pace
from harness.topology import load_named, with_link_impairment, with_rates_scaled

MBIT = 1_000_000


def rates(spec) -> list[int | None]:
    return [link.impair.rate_bit if link.impair else None for link in spec.links]


def one_link_of(rate_bit: int):
    return with_link_impairment(load_named("single-path"), rate_bit=rate_bit)


def test_the_measure_is_what_the_link_lets_through_not_what_the_application_wrote(
        mptcp_kernel):
    """1.5 s of sending into a 2 Mbit/s link: the socket takes far more than the link passes
    (its send buffer), so a sender-side count would read several times the rate."""
    with link_pace.links_at(one_link_of(2 * MBIT), 2 * MBIT) as topo:
        carried = link_pace.carried_by(topo, 2 * MBIT)
    assert 0.8 * 2 * MBIT <= carried <= 1.03 * 2 * MBIT, f"{carried / MBIT:.2f} Mbit/s"


def test_a_captured_measure_stops_its_captures(mptcp_kernel, processes_named):
    tcpdumps_before = processes_named("tcpdump")
    with link_pace.links_at(one_link_of(2 * MBIT), 2 * MBIT, captured=True) as topo:
        carried = link_pace.carried_by(topo, 2 * MBIT)
    assert 0.8 * 2 * MBIT <= carried <= 1.03 * 2 * MBIT, f"{carried / MBIT:.2f} Mbit/s"
    assert processes_named("tcpdump") - tcpdumps_before == set()


def test_a_kernel_that_fills_the_links_keeps_them_as_written(mptcp_kernel):
    pace = link_pace.measure(load_named("routed"))
    assert pace.total_rate_bit == 40 * MBIT and pace.scale == 1.0, pace.describe()
    assert pace.describe().startswith("links as written: routed carried ")
    assert pace.describe().endswith(" Mbit/s with each link at 40.00 (slowest of 8), "
                                    "from a bulk sender")


def test_a_paced_application_that_keeps_up_keeps_the_links_as_written(mptcp_kernel):
    """The measure's sender paced at the links' rate, as a paced test's application is: on
    a kernel that keeps up it reaches that rate (a sender that fell short of it would not)."""
    pace = link_pace.measure(load_named("routed"), paced_app=True)
    assert pace.scale == 1.0, pace.describe()
    assert pace.describe().endswith(" (slowest of 8), from an application paced at the "
                                    "links' rate")


def test_the_measure_opens_each_limited_link_to_the_rate_and_drops_its_delay():
    spec = load_named("asymmetric-paths")  # two links, each with a rate and a delay
    opened = link_pace.through_links_at(spec, 40 * MBIT)
    assert rates(opened) == [40 * MBIT, 40 * MBIT]
    assert [link.impair.delay_us for link in opened.links] == [None, None]
    assert opened.hosts == spec.hosts
    routed = load_named("routed")  # its third link (router - server) has no impairment
    assert rates(link_pace.through_links_at(routed, 40 * MBIT)) == [40 * MBIT, 40 * MBIT, None]


def test_scaling_changes_the_rates_and_nothing_else():
    spec = load_named("asymmetric-paths")  # two links, each with a rate and a delay
    scaled = with_rates_scaled(spec, 0.25)
    assert rates(spec) == [20 * MBIT, 20 * MBIT]
    assert rates(scaled) == [5 * MBIT, 5 * MBIT]
    assert [link.impair and link.impair.delay_us for link in scaled.links] == \
        [link.impair and link.impair.delay_us for link in spec.links]
    assert scaled.hosts == spec.hosts
    routed = load_named("routed")  # its third link (router - server) has no rate
    assert rates(with_rates_scaled(routed, 0.5)) == [10 * MBIT, 10 * MBIT, None]


def test_a_topology_without_a_rate_limit_has_nothing_to_scale():
    with pytest.raises(ValueError, match="single-path has no rate-limited link"):
        link_pace.total_rate_bit(load_named("single-path"))


def test_a_scaled_pace_says_every_measure():
    measures = (link_pace.Measure(40 * MBIT, 22.1 * MBIT),
                link_pace.Measure(5_525_000, 5.73 * MBIT))
    pace = link_pace.LinkPace("routed", 40 * MBIT, False, measures)
    assert pace.scale == pytest.approx(0.1381, abs=1e-4)
    assert pace.describe() == (
        "links scaled by 0.138 for this kernel: routed carried 22.10 Mbit/s with each link at "
        "40.00 (slowest of 8), then 5.73 Mbit/s with each link at 5.53 (slowest of 8), from a "
        "bulk sender")


def test_one_slow_connection_is_enough_to_scale_the_links(monkeypatch):
    """The pace of a connection can be bimodal (the debug kernel under emulation): the links
    stay as written only if every connection filled them, and the slowest sets the scale.
    The connections' rates are given here, in the order the measure asks for them, as no
    kernel is slow on demand."""
    at_40 = [mbit * MBIT for mbit in (38.3, 38.3, 38.3, 6.4, 38.3, 20, 20, 20)]
    lowered = int(6.4 * MBIT * link_pace.HEADROOM)
    at_lowered = [0.97 * lowered] * 7 + [0.94 * lowered]
    paces = iter(at_40 + at_lowered)
    asked = []

    @contextmanager
    def links_at(spec, rate_bit, captured):
        asked.append(("build", rate_bit))
        yield spec

    def carried_by(topo, rate_bit, paced_app):
        asked.append((rate_bit, paced_app))
        return next(paces)

    monkeypatch.setattr(link_pace, "links_at", links_at)
    monkeypatch.setattr(link_pace, "carried_by", carried_by)
    pace = link_pace.measure(load_named("asymmetric-paths"), paced_app=True)
    assert asked == [step for rate in (40 * MBIT, lowered)
                     for step in [("build", rate)] + [(rate, True)] * link_pace.CONNECTIONS]
    assert pace.measures == ((40 * MBIT, 6.4 * MBIT), (lowered, 0.94 * lowered))
    assert pace.scale == pytest.approx(6.4 * link_pace.HEADROOM / 40)


def test_a_scaled_transfer_keeps_at_least_the_least_bytes():
    """4 MB at a links' scale of 0.03 would be 120 kB, which the sockets' buffers take at
    once: the bytes scale so that it stays LEAST_SCALED_BYTES, never above as written."""
    least = link_pace.LEAST_SCALED_BYTES
    assert link_pace.bytes_scale(0.03, 4 * least) == pytest.approx(0.25)
    assert link_pace.bytes_scale(0.5, 4 * least) == pytest.approx(0.5)
    assert link_pace.bytes_scale(0.03, least // 2) == 1.0
    assert link_pace.bytes_scale(1.0, 20 * least) == 1.0
