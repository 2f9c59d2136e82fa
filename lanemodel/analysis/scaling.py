"""Scaling analysis for DDP runs: speedup curves and step-time attribution (the cost model is costmodel.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lanemodel.analysis.stats import Interval, bootstrap_median, bootstrap_ratio, median_of_launches

CAUSES = ("compute", "optimizer", "communication", "data", "wait", "other")


# --- speedup and efficiency ------------------------------------------------------------


@dataclass(frozen=True)
class ScalingPoint:
    """How one world size performs relative to the reference world size."""

    world_size: int
    step_time: Interval
    speedup: Interval
    efficiency: Interval
    samples_per_second: float
    oversubscribed: bool
    reference_world_size: int | None = None   # what speedup is relative to (None in runs saved before it)


def _scaled(interval: Interval, factor: float) -> Interval:
    return Interval(
        point=interval.point * factor,
        low=interval.low * factor,
        high=interval.high * factor,
        confidence=interval.confidence,
    )


def speedup_curve(
    step_times: dict[int, list[np.ndarray]],
    global_batch: dict[int, int],
    reference: int | None = None,
    oversubscribed: dict[int, bool] | None = None,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[ScalingPoint]:
    """Throughput speedup and parallel efficiency per world size, sorted by world size.

    Throughput is global batch / median step time, so the same formula covers
    strong scaling (fixed global batch: speedup is a step-time ratio) and weak
    scaling (batch grows with world size). speedup(N) = throughput(N) /
    throughput(reference); efficiency(N) = speedup(N) / (N / reference).
    The reference point's speedup and efficiency are exactly 1 by definition,
    so their intervals have zero width; the reference's own uncertainty enters
    every other point's interval through the ratio bootstrap.
    """
    if not step_times:
        raise ValueError("step_times is empty: need at least one world size")
    missing = sorted(set(step_times) - set(global_batch))
    if missing:
        raise ValueError(f"global_batch has no entry for world sizes {missing}")
    reference = min(step_times) if reference is None else reference
    if reference not in step_times:
        raise ValueError(f"reference world size {reference} has no step times")
    flags = oversubscribed or {}

    points = []
    for world_size in sorted(step_times):
        launches = step_times[world_size]
        batch_growth = global_batch[world_size] / global_batch[reference]
        ideal = world_size / reference
        if world_size == reference:
            speedup = Interval(1.0, 1.0, 1.0, confidence)
        else:
            step_ratio = bootstrap_ratio(
                step_times[reference], launches, n_boot=n_boot, confidence=confidence, seed=seed
            )
            speedup = _scaled(step_ratio, batch_growth)
        points.append(
            ScalingPoint(
                world_size=world_size,
                step_time=bootstrap_median(launches, n_boot=n_boot, confidence=confidence, seed=seed),
                speedup=speedup,
                efficiency=_scaled(speedup, 1.0 / ideal),
                samples_per_second=global_batch[world_size] / median_of_launches(launches),
                oversubscribed=flags.get(world_size, False),
                reference_world_size=reference,
            )
        )
    return points


def fastest(points: Sequence[ScalingPoint]) -> ScalingPoint:
    """The point with the highest throughput (samples per second)."""
    if not points:
        raise ValueError("points is empty")
    return max(points, key=lambda point: point.samples_per_second)


def karp_flatt(speedup: float, world_size: int) -> float | None:
    """Experimentally determined serial fraction e = (1/S - 1/p) / (1 - 1/p).

    A value that grows with p points at parallel overhead (communication,
    contention) rather than a fixed serial part. Undefined for p == 1.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size}")
    if speedup <= 0.0:
        raise ValueError(f"speedup must be positive, got {speedup}")
    if world_size == 1:
        return None
    return (1.0 / speedup - 1.0 / world_size) / (1.0 - 1.0 / world_size)


# --- where the step time goes ----------------------------------------------------------


@dataclass(frozen=True)
class CauseShares:
    """Fractions of the step time per cause; they sum to 1."""

    world_size: int
    compute: float
    optimizer: float
    communication: float
    data: float
    wait: float
    other: float


@dataclass(frozen=True)
class Breakdown:
    """Mean seconds per step at one world size, as measured on a rank.

    wait_time is how long the slowest rank takes beyond this rank, so that
    step_time (the slowest rank's) is this rank's parts plus the wait.
    """

    world_size: int
    step_time: float
    compute_time: float
    exposed_comm_time: float
    data_time: float
    wait_time: float
    optimizer_time: float = 0.0     # repeated in full on every rank, so it does not shrink with more ranks

    def shares(self) -> CauseShares:
        return cause_shares(self)

    def attributed_seconds(self) -> dict[str, float]:
        """Step time split by cause; consistent with shares(), so it sums to step_time."""
        shares = self.shares()
        return {cause: getattr(shares, cause) * self.step_time for cause in CAUSES}


def cause_shares(breakdown: Breakdown) -> CauseShares:
    """Fractions of the step time taken by each cause.

    'other' is the step time the measured parts do not cover. When the parts
    add up to more than the step time (timers overlap, or averaging noise),
    'other' is clipped to 0 and the parts are renormalised by their own sum,
    so the shares always sum to 1.
    """
    if breakdown.step_time <= 0.0:
        raise ValueError(f"step_time must be positive, got {breakdown.step_time}")
    parts = {
        "compute": breakdown.compute_time,
        "optimizer": breakdown.optimizer_time,
        "communication": breakdown.exposed_comm_time,
        "data": breakdown.data_time,
        "wait": breakdown.wait_time,
    }
    negative = [cause for cause, seconds in parts.items() if seconds < 0.0]
    if negative:
        raise ValueError(f"breakdown times must be non-negative: {negative}")
    parts["other"] = max(breakdown.step_time - sum(parts.values()), 0.0)
    total = sum(parts.values())
    return CauseShares(
        world_size=breakdown.world_size,
        **{cause: seconds / total for cause, seconds in parts.items()},
    )


def explain_change(before: Breakdown, after: Breakdown) -> dict[str, float]:
    """Seconds of the step-time change from `before` to `after` owed to each cause.

    Uses the attributed (clipped and renormalised) seconds on both sides, so
    the values sum exactly to after.step_time - before.step_time.
    """
    before_seconds = before.attributed_seconds()
    after_seconds = after.attributed_seconds()
    return {cause: after_seconds[cause] - before_seconds[cause] for cause in CAUSES}
