"""The scaling model built from measured parts, not fitted to the step times it explains.

Per world size N the probes measure one rank alone at N's per-rank batch and thread budget (its wall and
CPU seconds per step) and the gloo all-reduce of the gradient's buckets by N ranks with the same thread
plans and transport (its wall seconds and CPU seconds per rank). A step then takes the longer of

- the cores bound: every rank's CPU work (its compute alone plus its share of the all-reduce) spread over
  the cores the thread plan keeps busy, N x (rank CPU + all-reduce CPU) / cores in use, times the
  efficiency (the one fitted term: how far the scheduler falls short of keeping every core busy, the
  geometric mean of measured / bound over the world sizes fitted on where that bound is the larger);
- the latency bound: a rank's own step alone plus the all-reduce's wall time, none of it assumed hidden
  behind backward (the link-bound case: a slow network between nodes).

Held out: the step time of the predicted world size is never used; its parts are measured at it.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

from lanemodel.analysis.costmodel import ring_allreduce_seconds


@dataclass(frozen=True)
class MeasuredParts:
    """What the probes measured for one world size (seconds per step)."""

    world_size: int
    cores_in_use: int          # min(cores, ranks x compute threads): from the thread plan
    rank_wall: float           # one rank alone at this per-rank batch and thread budget
    rank_cpu: float            # its CPU seconds, every thread
    allreduce_wall: float      # the gradient's buckets all-reduced by this many ranks (0 for one rank)
    allreduce_cpu: float       # CPU seconds each rank spent on it

    @property
    def cores_bound(self) -> float:
        return self.world_size * (self.rank_cpu + self.allreduce_cpu) / self.cores_in_use

    @property
    def latency_bound(self) -> float:
        return self.rank_wall + self.allreduce_wall


@dataclass(frozen=True)
class PartsModel:
    parts: dict[int, MeasuredParts]
    efficiency: float                 # fitted: measured / cores bound; 1.0 when nothing was fitted
    fitted_on: tuple[int, ...]        # world sizes whose measured step times fixed the efficiency

    def predict(self, world_size: int) -> float:
        part = self.parts[world_size]
        return max(part.cores_bound * self.efficiency, part.latency_bound)

    def binding(self, world_size: int) -> str:
        """Which bound sets the prediction: "cores" or "latency"."""
        part = self.parts[world_size]
        return "cores" if part.cores_bound * self.efficiency >= part.latency_bound else "latency"


def fit_parts_model(parts: Mapping[int, MeasuredParts], measured: Mapping[int, float],
                    fit_on: tuple[int, ...] | None = None) -> PartsModel:
    """The efficiency from the measured step times of ``fit_on`` (default: every measured world size) where
    the cores bound binds (it is at least the latency bound)."""
    sizes = tuple(sorted(ws for ws in (fit_on if fit_on is not None else measured) if ws in parts and ws in measured))
    logs = [math.log(measured[ws] / parts[ws].cores_bound) for ws in sizes
            if parts[ws].cores_bound > 0 and parts[ws].cores_bound >= parts[ws].latency_bound]
    efficiency = math.exp(sum(logs) / len(logs)) if logs else 1.0
    return PartsModel(dict(parts), efficiency, sizes)


def prediction_rows(parts: Mapping[int, MeasuredParts], measured: Mapping[int, float],
                    measured_allreduce: Mapping[int, float | None] | None = None,
                    ring_at_link_rate: Mapping[int, float] | None = None) -> list[dict]:
    """Every world size predicted with the efficiency fitted on the other ones (leave one out), against its
    measured step; with the time training's all-reduce was in flight beside the microbenchmark's, and (emulated
    nodes) what a ring all-reduce would take at the links' nominal rate."""
    rows = []
    for ws in sorted(set(parts) & set(measured)):
        model = fit_parts_model(parts, measured, tuple(other for other in measured if other != ws))
        predicted = model.predict(ws)
        busy = (measured_allreduce or {}).get(ws)
        rows.append({"world_size": ws, "predicted": predicted, "measured": measured[ws],
                     "relative_error": (predicted - measured[ws]) / measured[ws], "bound": model.binding(ws),
                     "efficiency": model.efficiency, "fitted_on": list(model.fitted_on),
                     "predicted_allreduce": parts[ws].allreduce_wall if ws > 1 else None,
                     "measured_allreduce": busy,
                     "allreduce_relative_error": (parts[ws].allreduce_wall - busy) / busy if busy and ws > 1
                     else None,
                     "ring_at_link_rate": (ring_at_link_rate or {}).get(ws)})
    return rows


def holdout(rows: list[dict]) -> dict | None:
    """The largest world size's row (fitted without it), as the held-out check; None below three sizes."""
    if len(rows) < 3:
        return None
    last = rows[-1]
    return {"world_size": last["world_size"], "predicted": last["predicted"], "measured": last["measured"],
            "relative_error": last["relative_error"], "fitted_on": last["fitted_on"], "model": "measured parts"}


def ring_at_link_rate(world_size: int, gradient_bytes: float, link_gbit: float) -> float:
    """Seconds a ring all-reduce needs when every node boundary is a link of ``link_gbit``: each rank sends
    2(N-1)/N of the gradient to the next, and each node's link carries one such stream each way."""
    return ring_allreduce_seconds(world_size, gradient_bytes, 0.0, link_gbit * 1e9 / 8)


def median_of(records: list, field_name: str) -> float | None:
    """Median of a StepRecord field over ``records``, None when no record carries it."""
    values = [getattr(r, field_name) for r in records if getattr(r, field_name) is not None]
    return statistics.median(values) if values else None


def measured_parts(world_size: int, cores_in_use: int, alone_wall: float | None, alone_cpu: float | None,
                   allreduce: dict | None) -> MeasuredParts | None:
    """The parts of one world size, or None when a probe is missing (it was off, failed, or is older)."""
    if alone_wall is None or alone_cpu is None or (world_size > 1 and allreduce is None):
        return None
    gradient = allreduce["gradient"] if allreduce else {"wall": 0.0, "cpu": 0.0}
    return MeasuredParts(world_size, cores_in_use, alone_wall, alone_cpu, gradient["wall"], gradient["cpu"])
