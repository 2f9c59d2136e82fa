"""Launch-level statistics for the regression gate: a t test on per-launch log medians.

The launch is the sample: steps inside a launch share its placement and warm caches and are
correlated, so each launch contributes one value, the log of its median kept step time. Two runs
are compared by the difference of their mean log medians, whose variance has two parts:

- launch to launch, estimated from the launches themselves (pooled over both runs of one world
  size, so that 2-3 launches per side still give a usable estimate), and
- session to session: two pytest sessions differ by more than two launches of one session (another
  moment on a shared host). That part cannot be estimated from one pair of runs, so it enters as a
  known variance, ``session_sd``, measured by repeated A/A comparisons on the machine kind
  (``pytest benchmarks/ --gate-calibration``). Ratios measured inside one session (efficiency) and
  interleaved A/B launches cancel it and use 0; A/B launches are also paired (``PairedGroups``): each
  launch of the working tree is compared with the launch of REF next to it.

The degrees of freedom come from the Welch-Satterthwaite approximation, so the test stays valid
with few launches; p values and quantiles come from scipy.stats.t.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class SampleGroups:
    """Per-launch log medians of one world size: the current run's and the baseline's."""

    current: tuple[float, ...]
    baseline: tuple[float, ...]

    @property
    def pooled_variance(self) -> tuple[float, int]:
        """Launch-to-launch variance of log medians pooled over both runs, and its degrees of freedom."""
        squares, df = 0.0, 0
        for values in (self.current, self.baseline):
            if len(values) > 1:
                squares += float(np.var(values, ddof=1)) * (len(values) - 1)
                df += len(values) - 1
        return (squares / df if df else math.nan), df

    @property
    def difference(self) -> float:
        return float(np.mean(self.current) - np.mean(self.baseline))

    @property
    def variance_of_difference(self) -> float:
        variance, _ = self.pooled_variance
        return variance * (1.0 / len(self.current) + 1.0 / len(self.baseline))


@dataclass(frozen=True)
class PairedGroups:
    """Per-launch log medians of interleaved launches: ``current[i]`` and ``baseline[i]`` ran side by side
    (one block of a randomized A/B order), so each pair's difference is free of the drift between blocks.

    Same interface as ``SampleGroups``: the paired t test is the one-sample test on the differences.
    """

    current: tuple[float, ...]
    baseline: tuple[float, ...]

    @property
    def differences(self) -> tuple[float, ...]:
        return tuple(c - b for c, b in zip(self.current, self.baseline))

    @property
    def pooled_variance(self) -> tuple[float, int]:
        """Variance of the pair differences and its degrees of freedom."""
        diffs = self.differences
        if len(diffs) < 2:
            return math.nan, 0
        return float(np.var(diffs, ddof=1)), len(diffs) - 1

    @property
    def difference(self) -> float:
        return float(np.mean(self.differences))

    @property
    def variance_of_difference(self) -> float:
        variance, _ = self.pooled_variance
        return variance / len(self.differences)


@dataclass(frozen=True)
class LogDifference:
    """An estimated log ratio (positive: worse), its standard error and degrees of freedom."""

    estimate: float
    standard_error: float
    df: float

    @property
    def ratio(self) -> float:
        return math.exp(self.estimate)

    def p_worse(self) -> float:
        """One-sided p value against "no change", in the worse direction."""
        if not self.usable:
            return 1.0
        if self.standard_error == 0.0:
            return 0.0 if self.estimate > 0 else 1.0
        return float(stats.t.sf(self.estimate / self.standard_error, self.df))

    def upper_bound(self, confidence: float) -> float:
        """One-sided upper confidence bound of the log ratio."""
        if not self.usable:
            return math.inf
        return self.estimate + float(stats.t.ppf(confidence, self.df)) * self.standard_error

    def lower_bound(self, confidence: float) -> float:
        if not self.usable:
            return -math.inf
        return self.estimate - float(stats.t.ppf(confidence, self.df)) * self.standard_error

    @property
    def usable(self) -> bool:
        return math.isfinite(self.standard_error) and self.df > 0


def log_medians(launches: Sequence[Sequence[float]]) -> tuple[float, ...]:
    """One value per launch: the log of its median kept step time (launches without steps are skipped)."""
    return tuple(math.log(float(np.median(steps))) for steps in launches if len(steps))


FEW_LAUNCHES = 5    # below this many launches a bootstrap interval over launches has too few distinct resamples


def median_precision(launches: Sequence[Sequence[float]]) -> float:
    """Standard error of the mean log launch median, about the relative precision of a median (inf below two
    launches): what the report shows beside each median, and what a precise baseline aims to push below 1 %."""
    values = log_medians(launches)
    if len(values) < 2:
        return math.inf
    return float(np.std(values, ddof=1) / math.sqrt(len(values)))


def combine(groups: Sequence[tuple[SampleGroups | PairedGroups, float]], session_sd: float) -> LogDifference:
    """sum(sign * difference) with its standard error; ``session_sd`` adds the between-session part.

    Each world size's launch variance has its own pooled estimate; Welch-Satterthwaite combines
    their degrees of freedom (the session part is known, so it adds variance but no uncertainty).
    """
    estimate = sum(sign * group.difference for group, sign in groups)
    launch_variance, denominator = 0.0, 0.0
    for group, _ in groups:
        pooled, df = group.pooled_variance
        if df == 0:      # one launch on each side: no estimate of the launch-to-launch spread
            return LogDifference(estimate, math.inf, 0.0)
        part = group.variance_of_difference
        launch_variance += part
        denominator += part * part / df
    total = launch_variance + session_sd ** 2
    df = (total * total / denominator) if denominator > 0 else math.inf
    return LogDifference(estimate, math.sqrt(total), df)
