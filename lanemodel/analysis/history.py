"""The history of saved runs: every run's median step time and efficiency per (policy, world size), the
change points in those series, and a gate against the last N comparable runs (``--scaling-history N``).

One run against one baseline cannot tell a code change from a slower session; many runs can. Their
run-to-run spread is measured, not assumed: it holds every source of noise between sessions.
Change points come from ruptures (PELT, least-squares cost, a BIC-like penalty from the series' own
noise); each is then tested by a permutation test (scipy.stats) that accounts for the search.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from lanemodel.analysis.gate import (
    EFFICIENCY,
    STEP_TIME,
    BaselineError,
    GateResult,
    GateSettings,
    Series,
    check_comparable,
    load_baseline,
    make_verdict,
    metrics_gated,
    series_from_benchmarks,
    standard_error,
)
from lanemodel.analysis.launchstats import LogDifference
from lanemodel.records import RunConfig

Key = tuple[str, int]
MIN_SEGMENT = 2           # runs on each side of a change point: one run alone is the gate's business
PENALTY_FACTOR = 3.0      # PELT penalty, in units of noise variance x log(runs) (BIC-like)
CONFIDENCE = 0.95


@dataclass(frozen=True)
class SavedRun:
    run_id: str           # the file's name without .json, e.g. "0007_main"
    path: Path
    data: dict

    @property
    def config(self) -> dict:
        return self.data["scaling"]["config"]

    @property
    def series(self) -> dict[Key, Series]:
        return series_from_benchmarks(self.data["benchmarks"])


def load_runs(storage: Path) -> tuple[list[SavedRun], list[str]]:
    """Every saved run of this suite under ``storage``, oldest first (pytest-benchmark's run numbers),
    and one note per JSON file that is not one."""
    if not storage.is_dir():
        raise BaselineError(f"benchmark storage {storage} is not a directory")
    runs, skipped = [], []
    for path in sorted(storage.rglob("*.json"), key=lambda p: (p.name, str(p))):
        try:
            runs.append(SavedRun(path.stem, path, load_baseline(path)))
        except BaselineError as exc:
            skipped.append(str(exc).replace("baseline file", "file"))
    return runs, skipped


def comparable_runs(runs: list[SavedRun], config: RunConfig | dict) -> tuple[list[SavedRun], list[str]]:
    """The runs measured under ``config``'s machine and configuration, and why each other one is not."""
    kept, notes = [], []
    for run in runs:
        try:
            check_comparable(run.data, config, run.run_id)
            kept.append(run)
        except BaselineError as exc:
            lines = str(exc).splitlines()
            notes.append(f"{run.run_id} not comparable: " + "; ".join(line.strip() for line in lines[1:]))
    return kept, notes


@dataclass(frozen=True)
class Point:
    """One run's value of one metric, with its 95 % interval from the run's launches (nan with one launch)."""

    run_id: str
    value: float
    low: float
    high: float
    log_value: float
    log_se: float


def _log_mean(series: Series) -> tuple[float, float, int]:
    """Mean log median, its standard error (nan with one launch) and the launch count."""
    se = standard_error(series)
    return float(np.mean(series.log_medians)), se if math.isfinite(se) else math.nan, len(series.launches)


def _point(run_id: str, log_value: float, se: float, df: int, sign: int, scale: float = 1.0) -> Point:
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * se if df > 0 and math.isfinite(se) else math.nan
    bounds = sorted(scale * math.exp(sign * (log_value + d)) for d in (-half, half)) if math.isfinite(half) \
        else [math.nan, math.nan]
    return Point(run_id, scale * math.exp(sign * log_value), bounds[0], bounds[1], sign * log_value, se)


def run_points(run_id: str, series: dict[Key, Series]) -> dict[tuple[str, int, str], Point]:
    """Median step time at every (policy, world size); efficiency above each policy's smallest one."""
    out = {}
    for (policy, ws), found in series.items():
        mean, se, n = _log_mean(found)
        out[(policy, ws, STEP_TIME)] = _point(run_id, mean, se, n - 1, 1)
        ref = min(w for p, w in series if p == policy)
        if ws == ref:
            continue
        ref_mean, ref_se, ref_n = _log_mean(series[(policy, ref)])
        scale = (found.global_batch_size / series[(policy, ref)].global_batch_size) * ref / ws
        out[(policy, ws, EFFICIENCY)] = _point(run_id, mean - ref_mean, math.hypot(se, ref_se),
                                               min(n, ref_n) - 1, -1, scale)
    return out


def trends(runs: list[SavedRun]) -> dict[tuple[str, int, str], list[Point]]:
    """Per (policy, world size, metric) the runs that measured it, oldest first."""
    out: dict[tuple[str, int, str], list[Point]] = {}
    for run in runs:
        for key, point in run_points(run.run_id, run.series).items():
            out.setdefault(key, []).append(point)
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class ChangePoint:
    run_id: str           # the first run after the shift
    index: int            # its position in the series
    policy: str
    world_size: int
    metric: str
    ratio: float          # mean after / mean before (step time: > 1 is slower; efficiency: < 1 is worse)
    p_value: float        # Welch t test, runs after against runs before
    runs_before: int
    runs_after: int


def _noise(values: np.ndarray, ses: np.ndarray) -> float:
    """The series' run-to-run noise (log sd): robust to a shift (median absolute successive difference),
    and never below the runs' own measurement precision."""
    successive = 1.4826 * float(np.median(np.abs(np.diff(values)))) / math.sqrt(2)
    precision = float(np.nanmedian(ses)) if np.isfinite(ses).any() else 0.0
    return max(successive, precision, 1e-4)


def largest_split_t(window: np.ndarray, axis: int = -1) -> np.ndarray:
    """The largest two-sample t statistic over every split of a window into runs before and after (at least
    MIN_SEGMENT each): the shift a change-point search would pick, so testing it accounts for the search."""
    window = np.moveaxis(np.asarray(window, dtype=float), axis, -1)
    n = window.shape[-1]
    best = np.zeros(window.shape[:-1])
    for k in range(MIN_SEGMENT, n - MIN_SEGMENT + 1):
        before, after = window[..., :k], window[..., k:]
        pooled = np.sqrt((before.var(axis=-1) * k + after.var(axis=-1) * (n - k)) / max(n - 2, 1))
        spread = np.maximum(pooled, 1e-12) * math.sqrt(1 / k + 1 / (n - k))
        t = np.abs(after.mean(axis=-1) - before.mean(axis=-1)) / spread
        best = np.maximum(best, t)
    return best


def change_points(points: list[Point], alpha: float = 0.05, penalty_factor: float = PENALTY_FACTOR,
                  resamples: int = 1999) -> list[tuple[int, int, int, float, float]]:
    """(first run after the shift, runs before, runs after, ratio, p value) of each significant shift.

    PELT (ruptures) proposes the shifts; each is then tested on the runs of its two neighbouring segments
    by a permutation test (scipy.stats) of ``largest_split_t``: under "no change" the runs' order carries
    no information, so shuffling it gives the statistic's null distribution, search included. Bonferroni
    over the proposed shifts of the series. The resampling is seeded: the same history gives the same answer.
    """
    import ruptures

    values = np.array([p.log_value for p in points])
    if len(values) < 2 * MIN_SEGMENT:
        return []
    penalty = penalty_factor * _noise(values, np.array([p.log_se for p in points])) ** 2 * math.log(len(values))
    ends = ruptures.Pelt(model="l2", min_size=MIN_SEGMENT, jump=1).fit(values.reshape(-1, 1)).predict(pen=penalty)
    bounds = [0, *ends]
    found = []
    for i in range(1, len(bounds) - 1):
        before, after = values[bounds[i - 1]:bounds[i]], values[bounds[i]:bounds[i + 1]]
        test = stats.permutation_test((np.concatenate([before, after]),), largest_split_t, vectorized=True,
                                      permutation_type="pairings", n_resamples=resamples, alternative="greater",
                                      rng=np.random.default_rng(0))
        if test.pvalue < alpha / (len(ends) - 1):
            found.append((bounds[i], len(before), len(after), math.exp(after.mean() - before.mean()),
                          float(test.pvalue)))
    return found


def detect(series: dict[tuple[str, int, str], list[Point]], alpha: float = 0.05) -> list[ChangePoint]:
    out = []
    for (policy, ws, metric), points in series.items():
        for index, before, after, ratio, p in change_points(points, alpha):
            out.append(ChangePoint(points[index].run_id, index, policy, ws, metric, ratio, p, before, after))
    return sorted(out, key=lambda c: (c.index, c.policy, c.world_size, c.metric))


def compare_with_history(current: dict[Key, Series], history: list[SavedRun], settings: GateSettings,
                         metrics: int | None = None) -> GateResult:
    """The current run against the last runs of its history: is it an outlier of their spread?

    Per metric, the history's runs give a mean and a run-to-run sd (every source of noise between
    sessions included); the current run is one more draw: estimate = current - mean, standard error =
    sd * sqrt(1 + 1/N), N - 1 degrees of freedom (a prediction interval). The rule is the gate's.
    """
    runs = [run_points(run.run_id, run.series) for run in history]
    now = run_points("current", current)
    keys = [key for key in sorted(now) if sum(key in r for r in runs) >= 2]
    if not keys:
        raise BaselineError("no (threads, world size) of this run is in at least 2 of the history's runs")
    gated = {(policy, ws) for policy, ws, _ in keys}
    alpha = settings.alpha_per_test(metrics if metrics is not None else metrics_gated(gated))
    verdicts = []
    for policy, ws, metric in keys:
        past = [r[(policy, ws, metric)] for r in runs if (policy, ws, metric) in r]
        logs = np.array([p.log_value for p in past])
        sign = 1 if metric == STEP_TIME else -1
        estimate = sign * (now[(policy, ws, metric)].log_value - float(logs.mean()))
        diff = LogDifference(estimate, float(np.std(logs, ddof=1)) * math.sqrt(1 + 1 / len(logs)), len(logs) - 1)
        limit = settings.max_slowdown if metric == STEP_TIME else 1.0 - settings.max_efficiency_drop
        scale = past[-1].value / math.exp(past[-1].log_value)      # efficiency's batch and size factor
        base = scale * math.exp(float(logs.mean()))
        verdicts.append(make_verdict(current[(policy, ws)], metric, diff, sign, base, now[(policy, ws, metric)].value,
                                     limit, alpha, settings, (len(current[(policy, ws)].launches), len(past))))
    notes = [f"world size {ws} ({policy}) is in fewer than 2 history runs, so it is not gated"
             for policy, ws in sorted(set(current) - gated)]
    return GateResult(verdicts, notes)
