"""Judging a lever value against the default configuration, from blocks run side by side in one session.

A block is one launch of the default and one of each value, in a drawn order, all from the block's seed
(same initial weights, same samples in the same order); blocks differ by seed. So within a block two
launches differ by the lever alone, and the drift of a shared host between blocks cancels in the ratio.

- Speed: the step-time ratio value/default from each block's launch medians (a paired t test on their logs,
  ``launchstats.PairedGroups``), with its 95 % interval.
- Loss: each launch's mean loss over the second half of its steps (every rank, equal samples seen on both
  sides), as a log ratio value/default per block. "Trains the same" is an equivalence test (TOST): the 90 %
  interval of the mean relative difference lies inside +-tolerance, which is the same as both one-sided
  tests at 5 % rejecting a difference of at least the tolerance. "Trains worse": the difference is above 0
  at 5 % (one-sided) and its estimate beyond the tolerance, or the value's loss diverged (not finite).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from lanemodel.analysis.launchstats import LogDifference, PairedGroups, combine, log_medians
from lanemodel.records import Launch

ALPHA = 0.05
SPEED_CONFIDENCE = 0.95
FASTER, SLOWER, NO_EFFECT = "faster", "slower", "no measurable effect"
SAME, WORSE, BETTER, UNDECIDED = "trains the same", "trains worse", "trains better", "loss not shown the same"


def late_loss(records: Sequence) -> float:
    """Mean loss of the records of the second half of the steps they cover (nan without records): the loss
    at equal samples seen, when both sides trained the same samples in the same order."""
    steps = sorted({record.step for record in records})
    if not steps:
        return math.nan
    late = set(steps[len(steps) // 2:])
    return float(np.mean([record.loss for record in records if record.step in late]))


def launch_loss(launch: Launch) -> float:
    """``late_loss`` over every rank's records of the launch."""
    return late_loss(launch.records)


@dataclass(frozen=True)
class LossCheck:
    """Log loss ratios log(value/default), one per block (seed), and the equivalence test on them. Logs, as for
    step times: a diverging value's few huge ratios would otherwise swamp the interval. A value whose loss
    is not finite (nan, inf) where the default's is diverged: it trains worse, whatever the others say."""

    log_ratios: tuple[float, ...]
    tolerance: float            # relative: 0.02 is "within 2 %"

    @property
    def diverged(self) -> bool:
        return any(not math.isfinite(r) for r in self.log_ratios)

    @property
    def estimate(self) -> float:
        """The relative difference value/default - 1 (geometric mean over blocks)."""
        if not self.log_ratios or self.diverged:
            return math.nan
        return math.expm1(float(np.mean(self.log_ratios)))

    def interval(self, confidence: float = 1 - 2 * ALPHA) -> tuple[float, float]:
        """Two-sided interval of the relative difference (TOST at ALPHA uses the 1 - 2 ALPHA one)."""
        n = len(self.log_ratios)
        if n < 2 or self.diverged:
            return -math.inf, math.inf
        mean = float(np.mean(self.log_ratios))
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * float(np.std(self.log_ratios, ddof=1)) / math.sqrt(n)
        return math.expm1(mean - half), math.expm1(mean + half)

    @property
    def verdict(self) -> str:
        if self.diverged:
            return WORSE
        low, high = self.interval()
        if -self.tolerance < low and high < self.tolerance:
            return SAME
        # The 90 % interval's bounds are the one-sided 95 % ones.
        if low > 0 and self.estimate > self.tolerance:
            return WORSE
        if high < 0 and self.estimate < -self.tolerance:
            return BETTER
        return UNDECIDED


def loss_log_ratio(value_loss: float, default_loss: float) -> float:
    """log(value/default); nan when the value's loss is not finite or not positive (it diverged)."""
    if not (math.isfinite(value_loss) and value_loss > 0 and math.isfinite(default_loss) and default_loss > 0):
        return math.nan
    return math.log(value_loss / default_loss)


@dataclass(frozen=True)
class SpeedCheck:
    """The step-time ratio value/default over paired blocks."""

    difference: LogDifference
    blocks: int

    @property
    def ratio(self) -> float:
        return self.difference.ratio

    @property
    def interval(self) -> tuple[float, float]:
        side = 0.5 + SPEED_CONFIDENCE / 2
        return math.exp(self.difference.lower_bound(side)), math.exp(self.difference.upper_bound(side))

    @property
    def verdict(self) -> str:
        low, high = self.interval
        return FASTER if high < 1.0 else SLOWER if low > 1.0 else NO_EFFECT


def speed_check(value_launches: Sequence[Launch], default_launches: Sequence[Launch]) -> SpeedCheck:
    """Pairs are the blocks' launches, in block order (both lists hold finished launches only, aligned)."""
    groups = PairedGroups(log_medians([launch.kept_step_times for launch in value_launches]),
                          log_medians([launch.kept_step_times for launch in default_launches]))
    return SpeedCheck(combine([(groups, 1.0)], session_sd=0.0), len(groups.differences))


def loss_check(value_launches: Sequence[Launch], default_launches: Sequence[Launch], tolerance: float) -> LossCheck:
    return LossCheck(tuple(loss_log_ratio(launch_loss(v), launch_loss(d))
                           for v, d in zip(value_launches, default_launches)), tolerance)


def verdict(speed: SpeedCheck, loss: LossCheck) -> str:
    """The row's verdict: what a user should do with the value."""
    if speed.verdict == FASTER:
        if loss.verdict in (SAME, BETTER):
            return f"faster and {loss.verdict}"
        return "faster but trains worse" if loss.verdict == WORSE else f"faster, {UNDECIDED}"
    if speed.verdict == SLOWER:
        return "slower" + (", and trains worse" if loss.verdict == WORSE else "")
    return NO_EFFECT + (", but trains worse" if loss.verdict == WORSE else "")


def recommendable(speed: SpeedCheck, loss: LossCheck) -> bool:
    return speed.verdict == FASTER and loss.verdict in (SAME, BETTER)


def paired_finished(value_launches: Sequence[Launch | None],
                    default_launches: Sequence[Launch | None]) -> tuple[list[Launch], list[Launch]]:
    """The blocks where both launches finished, aligned (a failed launch drops its block from the pairs)."""
    pairs = [(v, d) for v, d in zip(value_launches, default_launches)
             if v is not None and d is not None and v.finished and d.finished and v.kept_step_times
             and d.kept_step_times]
    return [v for v, _ in pairs], [d for _, d in pairs]


def median_per_step(launches: Sequence[Launch], field: str) -> float | None:
    """The median over kept steps and ranks of a record field (None when no record has it)."""
    values = [getattr(record, field) for launch in launches for record in launch.kept_records
              if getattr(record, field) is not None]
    return float(np.median(values)) if values else None


def side_json(launches: Sequence[Launch]) -> dict:
    """What one side measured over its finished launches: step, throughput, all-reduce time and bytes, loss."""
    if not launches:
        return {}
    step = float(np.median([np.median(launch.kept_step_times) for launch in launches]))
    return {"median_step_time": step, "samples_per_second": launches[0].global_batch_size / step,
            "comm_time": median_per_step(launches, "comm_time"),
            "comm_exposed_time": median_per_step(launches, "comm_exposed_time"),
            "comm_bytes": median_per_step(launches, "comm_bytes"),
            "loss": float(np.mean([launch_loss(launch) for launch in launches])), "launches": len(launches)}


def row_json(label: str, value_launches: Sequence[Launch | None], default_launches: Sequence[Launch | None],
             tolerance: float, errors: Sequence[str] = ()) -> dict:
    """One row of the study: the value against the default over the blocks where both finished. A value
    with fewer than two such blocks has no interval and no verdict; its errors say why."""
    values, defaults = paired_finished(value_launches, default_launches)
    row = {"label": label, "blocks": len(values), "errors": list(errors), **side_json(values)}
    if len(values) < 2:
        row["verdict"] = "failed" if errors else "too few blocks"
        return row
    speed, loss = speed_check(values, defaults), loss_check(values, defaults, tolerance)
    row.update(ratio=speed.ratio, ratio_interval=list(speed.interval), speed=speed.verdict,
               loss_difference=loss.estimate, loss_interval=list(loss.interval()), loss_verdict=loss.verdict,
               verdict=verdict(speed, loss), recommendable=recommendable(speed, loss))
    return row


def fastest(world_sizes: dict[str, dict]) -> dict | None:
    """The (world size, configuration) with the most samples per second among those that train as the default
    does: the default itself, every value that was faster and trained the same, and a re-measured
    combination that did (a combination can come out slower than its best single value: levers interact)."""
    candidates = []
    for ws, study in world_sizes.items():
        if study.get("default", {}).get("samples_per_second"):
            candidates.append((study["default"]["samples_per_second"], int(ws), "default"))
        for row in [*study.get("rows", []), study.get("recommended") or {}]:
            if row.get("recommendable") and row.get("samples_per_second"):
                candidates.append((row["samples_per_second"], int(ws), row["label"]))
    if not candidates:
        return None
    best = max(candidates)
    return {"samples_per_second": best[0], "world_size": best[1], "configuration": best[2]}


def predicted_ratio(default: dict, predicted_bytes: int | None) -> float | None:
    """The step-time ratio the parts model expects from a change of the bytes sent alone: the default's
    exposed all-reduce time scaled by the bytes ratio, the rest of its step unchanged (compression's own CPU
    time is left out). None where the bytes do not change or the default's parts are unknown."""
    step, exposed, sent = (default.get(key) for key in ("median_step_time", "comm_exposed_time", "comm_bytes"))
    if not step or exposed is None or not sent or predicted_bytes is None or predicted_bytes == sent:
        return None
    return (step - exposed * (1.0 - predicted_bytes / sent)) / step
