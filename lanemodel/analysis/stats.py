"""Launch-aware bootstrap statistics for step-time benchmarks.

Steps inside one launch share a machine state (placement, cache warmth,
neighbours on the host), so they are correlated; launches are the
independent samples. Intervals therefore come from a two-level bootstrap:
resample launches with replacement, then steps within each chosen launch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Verdict = Literal["pass", "regressed", "inconclusive"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval around it."""

    point: float
    low: float
    high: float
    confidence: float


def _validated(launches: Sequence[np.ndarray], name: str) -> list[np.ndarray]:
    """Return launches as 1-D float arrays, rejecting anything a median cannot use."""
    if len(launches) == 0:
        raise ValueError(f"{name} is empty: need at least one launch")
    arrays = []
    for index, launch in enumerate(launches):
        steps = np.asarray(launch, dtype=float)
        if steps.ndim != 1:
            raise ValueError(f"{name}[{index}] must be 1-D, got shape {steps.shape}")
        if steps.size == 0:
            raise ValueError(f"{name}[{index}] is empty: a launch needs at least one step")
        if not np.all(np.isfinite(steps)):
            raise ValueError(f"{name}[{index}] contains non-finite step times")
        arrays.append(steps)
    return arrays


def _check_bootstrap_settings(n_boot: int, confidence: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def median_of_launches(launches: Sequence[np.ndarray]) -> float:
    """Median over all steps pooled, so longer launches weigh proportionally more."""
    return float(np.median(np.concatenate(_validated(launches, "launches"))))


def _resampled_medians(
    launches: list[np.ndarray], n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Pooled-step medians of n_boot two-level resamples, computed without Python loops.

    Launches are padded with NaN into one matrix; each resample picks launches,
    draws as many step positions as the chosen launch has steps, and masks the
    padding. Sorting pushes NaN to the end, so the median of each row is read
    from the sorted row at positions given by its own pooled step count.
    """
    lengths = np.array([launch.size for launch in launches])
    width = int(lengths.max())
    padded = np.full((len(launches), width), np.nan)
    for row, launch in enumerate(launches):
        padded[row, : launch.size] = launch

    chosen = rng.integers(len(launches), size=(n_boot, len(launches)))
    chosen_lengths = lengths[chosen]
    positions = rng.integers(0, chosen_lengths[..., None], size=(*chosen.shape, width))
    values = padded[chosen[..., None], positions]
    values[np.arange(width) >= chosen_lengths[..., None]] = np.nan

    pooled = np.sort(values.reshape(n_boot, -1), axis=1)
    counts = chosen_lengths.sum(axis=1)
    rows = np.arange(n_boot)
    return 0.5 * (pooled[rows, (counts - 1) // 2] + pooled[rows, counts // 2])


def _percentile_interval(point: float, replicates: np.ndarray, confidence: float) -> Interval:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return Interval(point=point, low=float(low), high=float(high), confidence=confidence)


def bootstrap_median(
    launches: Sequence[np.ndarray],
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile interval for the pooled median step time.

    With a single launch the launch level has nothing to resample, so only
    steps are resampled. Launch-to-launch variation is then invisible and the
    interval is optimistic (too narrow); prefer several launches.
    """
    _check_bootstrap_settings(n_boot, confidence)
    arrays = _validated(launches, "launches")
    replicates = _resampled_medians(arrays, n_boot, np.random.default_rng(seed))
    return _percentile_interval(median_of_launches(arrays), replicates, confidence)


def bootstrap_ratio(
    numerator_launches: Sequence[np.ndarray],
    denominator_launches: Sequence[np.ndarray],
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile interval for median(numerator) / median(denominator).

    The two sides come from separate launches, so each is resampled
    independently (two-level, as in bootstrap_median, with the same
    single-launch caveat).
    """
    return bootstrap_median_ratio([numerator_launches], [denominator_launches], n_boot, confidence, seed)


def verdict_higher_is_worse(interval: Interval, limit: float) -> Verdict:
    """Judge a metric where larger is worse (e.g. step-time ratio current/baseline).

    Regressed only when the whole interval exceeds the limit; pass only when
    the whole interval is within it; otherwise the data cannot tell.
    """
    if interval.low > limit:
        return "regressed"
    if interval.high <= limit:
        return "pass"
    return "inconclusive"


def verdict_lower_is_worse(interval: Interval, limit: float) -> Verdict:
    """Judge a metric where smaller is worse (e.g. efficiency ratio current/baseline)."""
    if interval.high < limit:
        return "regressed"
    if interval.low >= limit:
        return "pass"
    return "inconclusive"


def bootstrap_median_ratio(
    numerators: Sequence[Sequence[np.ndarray]],
    denominators: Sequence[Sequence[np.ndarray]],
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Interval for prod(median of each numerator) / prod(median of each denominator).

    Every group of launches is resampled independently (two-level). A ratio of efficiencies,
    (current_ref / current_N) / (baseline_ref / baseline_N), is one such quotient of four medians.
    """
    _check_bootstrap_settings(n_boot, confidence)
    groups = [_validated(g, f"numerators[{i}]") for i, g in enumerate(numerators)]
    groups += [_validated(g, f"denominators[{i}]") for i, g in enumerate(denominators)]
    rngs = [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(len(groups))]
    replicates = [_resampled_medians(g, n_boot, rng) for g, rng in zip(groups, rngs)]
    medians = [median_of_launches(g) for g in groups]
    split = len(numerators)
    if min(medians[split:]) <= 0.0:
        raise ValueError("every denominator group must have a positive median")
    point = float(np.prod(medians[:split]) / np.prod(medians[split:]))
    ratio = np.prod(replicates[:split], axis=0) / np.prod(replicates[split:], axis=0)
    return _percentile_interval(point, ratio, confidence)
