"""Tests for the launch-aware bootstrap and the regression verdicts."""

import numpy as np
import pytest

from lanemodel.analysis.stats import (
    Interval,
    bootstrap_median,
    bootstrap_median_ratio,
    bootstrap_ratio,
    median_of_launches,
    verdict_higher_is_worse,
    verdict_lower_is_worse,
)


def noisy_launches(median: float, n_launches: int, n_steps: int, seed: int) -> list[np.ndarray]:
    """Launches with a per-launch offset (about 2 %) plus per-step noise (about 3 %)."""
    rng = np.random.default_rng(seed)
    return [
        median * (1.0 + rng.normal(0.0, 0.02)) * (1.0 + rng.normal(0.0, 0.03, n_steps))
        for _ in range(n_launches)
    ]


def width(interval: Interval) -> float:
    return interval.high - interval.low


# --- median_of_launches ------------------------------------------------------------------


def test_median_pools_steps_rather_than_taking_median_of_medians():
    # Pooled [1, 2, 3, 10] -> 2.5; a median of launch medians would give 6.
    assert median_of_launches([np.array([1.0, 2.0, 3.0]), np.array([10.0])]) == 2.5


def test_empty_launch_list_is_rejected():
    with pytest.raises(ValueError, match="launches is empty"):
        median_of_launches([])


def test_empty_launch_is_rejected_by_index():
    with pytest.raises(ValueError, match=r"launches\[1\] is empty"):
        bootstrap_median([np.array([1.0]), np.array([])])


def test_ratio_names_the_empty_side():
    with pytest.raises(ValueError, match=r"denominators\[0\] is empty"):
        bootstrap_ratio([np.array([1.0])], [])
    with pytest.raises(ValueError, match=r"numerators\[0\]\[0\] is empty"):
        bootstrap_ratio([np.array([])], [np.array([1.0])])


def test_efficiency_ratio_of_four_medians():
    ref, n = [np.array([2.0, 2.0, 2.0])], [np.array([1.25, 1.25])]
    # current efficiency 2/1.25 vs baseline 2/1.0: ratio 0.8, exact for constant steps
    interval = bootstrap_median_ratio([ref, [np.array([1.0, 1.0])]], [n, ref])
    assert interval.point == pytest.approx(0.8)
    assert interval.low == pytest.approx(0.8) and interval.high == pytest.approx(0.8)


def test_non_finite_steps_are_rejected():
    with pytest.raises(ValueError, match="non-finite"):
        median_of_launches([np.array([1.0, np.nan])])


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5])
def test_confidence_must_be_a_proper_fraction(confidence):
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_median([np.array([1.0, 2.0])], confidence=confidence)


# --- bootstrap_median --------------------------------------------------------------------


def test_constant_steps_give_a_zero_width_interval():
    interval = bootstrap_median([np.full(5, 0.25), np.full(3, 0.25)], confidence=0.9)
    assert interval == Interval(point=0.25, low=0.25, high=0.25, confidence=0.9)


def test_resamples_whole_launches_before_steps():
    # Two constant launches at 1 s and 3 s. Resampling launches gives pooled
    # medians 1, 2, 3 with probabilities 1/4, 1/2, 1/4, so the 30 % and 70 %
    # quantiles are both 2. Resampling the six pooled steps directly would put
    # the 30 % quantile at 1 (P(median = 1) = 22/64 > 0.3).
    launches = [np.full(3, 1.0), np.full(3, 3.0)]
    assert bootstrap_median(launches, confidence=0.4) == Interval(2.0, 2.0, 2.0, 0.4)
    assert bootstrap_median(launches, confidence=0.95) == Interval(2.0, 1.0, 3.0, 0.95)


def test_single_launch_falls_back_to_step_resampling():
    interval = bootstrap_median([np.array([1.0, 1.0, 3.0, 3.0])])
    assert (interval.point, interval.low, interval.high) == (2.0, 1.0, 3.0)


def test_interval_contains_point():
    interval = bootstrap_median(noisy_launches(0.5, n_launches=5, n_steps=30, seed=1))
    assert interval.low <= interval.point <= interval.high
    assert width(interval) > 0.0


def test_same_seed_gives_identical_interval_and_other_seed_differs():
    launches = noisy_launches(0.5, n_launches=4, n_steps=20, seed=2)
    assert bootstrap_median(launches, seed=7) == bootstrap_median(launches, seed=7)
    assert bootstrap_median(launches, seed=7) != bootstrap_median(launches, seed=8)


def test_more_launches_shrink_the_interval():
    few = noisy_launches(0.5, n_launches=3, n_steps=10, seed=3)
    many = few * 6
    assert width(bootstrap_median(many)) < 0.7 * width(bootstrap_median(few))


# --- bootstrap_ratio ---------------------------------------------------------------------


def test_ratio_of_scaled_constant_launches_is_exact():
    baseline = [np.full(4, 0.25), np.full(6, 0.25)]
    current = [np.full(5, 0.375)]
    assert bootstrap_ratio(current, baseline) == Interval(1.5, 1.5, 1.5, 0.95)


def test_ratio_point_is_ratio_of_pooled_medians():
    numerator = [np.array([1.0, 2.0, 3.0]), np.array([10.0])]
    denominator = [np.array([4.0, 5.0])]
    assert bootstrap_ratio(numerator, denominator).point == pytest.approx(2.5 / 4.5)


def test_ratio_is_reproducible_with_a_seed():
    a = noisy_launches(1.0, n_launches=3, n_steps=15, seed=4)
    b = noisy_launches(1.2, n_launches=3, n_steps=15, seed=5)
    assert bootstrap_ratio(a, b, seed=3) == bootstrap_ratio(a, b, seed=3)


def test_a_a_comparison_passes_a_ten_percent_limit():
    launches = noisy_launches(0.8, n_launches=5, n_steps=30, seed=6)
    interval = bootstrap_ratio(launches, launches)
    assert interval.point == 1.0
    assert interval.low < 1.0 < interval.high
    assert verdict_higher_is_worse(interval, 1.10) == "pass"


def test_one_and_a_half_times_slower_is_a_regression():
    baseline = noisy_launches(0.8, n_launches=5, n_steps=30, seed=7)
    current = noisy_launches(1.2, n_launches=5, n_steps=30, seed=8)
    interval = bootstrap_ratio(current, baseline)
    assert interval.point == pytest.approx(1.5, rel=0.05)
    assert verdict_higher_is_worse(interval, 1.10) == "regressed"


# --- verdicts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (1.12, 1.30, "regressed"),
        (0.95, 1.05, "pass"),
        (0.95, 1.10, "pass"),  # touching the limit is still within it
        (1.00, 1.20, "inconclusive"),
        (1.10, 1.20, "inconclusive"),
    ],
)
def test_verdict_higher_is_worse(low, high, expected):
    interval = Interval(point=(low + high) / 2, low=low, high=high, confidence=0.95)
    assert verdict_higher_is_worse(interval, 1.10) == expected


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.70, 0.85, "regressed"),
        (0.95, 1.05, "pass"),
        (0.90, 1.00, "pass"),  # touching the limit is still within it
        (0.85, 0.95, "inconclusive"),
        (0.80, 0.90, "inconclusive"),
    ],
)
def test_verdict_lower_is_worse(low, high, expected):
    interval = Interval(point=(low + high) / 2, low=low, high=high, confidence=0.95)
    assert verdict_lower_is_worse(interval, 0.90) == expected
