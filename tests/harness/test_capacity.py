"""How the topologies' rate limits scale to a kernel too slow for them (harness.capacity)."""

from harness import capacity
from harness.topology import has_rate_limits, load_named, with_rates_scaled


def test_a_kernel_near_the_reference_runs_the_rates_as_written():
    assert capacity.factor_for(capacity.REFERENCE_MBIT) == 1
    assert capacity.factor_for(capacity.REFERENCE_MBIT * capacity.NOISE) == 1
    assert capacity.factor_for(10_000) == 1


def test_a_slow_kernel_gets_the_largest_power_of_two_it_keeps_up_with():
    just_below = capacity.REFERENCE_MBIT * capacity.NOISE * 0.99
    assert capacity.factor_for(just_below) == 0.5
    assert capacity.factor_for(capacity.REFERENCE_MBIT * capacity.NOISE / 4) == 0.25
    assert capacity.factor_for(0.0) == capacity.SMALLEST_SCALE


def test_the_scale_is_said_with_what_was_measured():
    assert "as written (this kernel carried 70.0 Mbit/s" in capacity.LinkScale(70, 1).describe()
    assert "scaled x1/4: this kernel carried 12.5" in capacity.LinkScale(12.5, 0.25).describe()


def test_only_rate_limits_scale():
    two_paths = load_named("two-paths")
    scaled = with_rates_scaled(two_paths, 0.25)
    assert [link.impair.rate_bit for link in scaled.links] == [5_000_000, 5_000_000]
    asymmetric = load_named("asymmetric-paths")
    slower = with_rates_scaled(asymmetric, 0.5)
    assert [link.impair.delay_us for link in slower.links] == \
        [link.impair.delay_us for link in asymmetric.links]
    assert has_rate_limits(two_paths) and not has_rate_limits(load_named("single-path"))
