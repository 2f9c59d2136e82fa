"""From recorded launches to what the suite reports: the curve, its causes and a fitted model.

Pure: reads the launches the engine recorded, knows nothing of torch or pytest.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from lanemodel.analysis.breakdown import breakdown, comm_seconds, cpu_use, run_step_times, skew_summary
from lanemodel.analysis.costmodel import ScalingModel, best_world_size, fit_scaling_model, holdout_error
from lanemodel.analysis.launchstats import median_precision
from lanemodel.analysis.partsmodel import holdout
from lanemodel.analysis.scaling import Breakdown, ScalingPoint, explain_change, fastest, karp_flatt, speedup_curve
from lanemodel.analysis.stats import Interval, bootstrap_ratio, median_of_launches
from lanemodel.records import Launch, LaunchSeries, by_policy

DEFAULT_BANDWIDTH_BYTES_PER_S = 1.25e9      # a 10 Gbit/s link, for the multi-node prediction
PREDICTION_NODES = (2, 4, 8)


@dataclass
class ModelReport:
    model: ScalingModel
    holdout: dict | None                # fit without the largest world size, predict it
    best_world_size_here: int           # on this machine, among 1..4x the largest measured
    predictions_here: dict[int, float]  # predicted step seconds at larger world sizes on this machine
    multi_node: list[dict]              # N machines like this one, each running the best world size


@dataclass
class PolicyAnalysis:
    """One thread policy's sweep: the scaling curve and what explains it."""

    policy: str
    points: list[ScalingPoint]
    fastest_world_size: int
    breakdowns: dict[int, Breakdown]
    comm_seconds: dict[int, float | None]
    karp_flatt: dict[int, float | None]
    skew: dict[int, dict]
    changes: list[dict]                 # seconds of each step-time change owed to each cause
    model: ModelReport | None
    model_note: str
    launch_counts: dict[int, int] = field(default_factory=dict)
    wall_time: dict[int, float | None] = field(default_factory=dict)     # mean launch wall time, start-up included
    comm_overlap: dict[int, float | None] = field(default_factory=dict)  # share of all-reduce hidden by backward
    cpu: dict[int, dict | None] = field(default_factory=dict)   # breakdown.cpu_use: CPU time, core waits, memory
    threads: dict[int, int] = field(default_factory=dict)       # compute threads each rank ran with
    parts: list[dict] = field(default_factory=list)   # partsmodel.prediction_rows: the model from measured parts
    parts_note: str = ""                              # why there is no such model, when there is none
    precision: dict[int, float] = field(default_factory=dict)   # launchstats.median_precision (inf: 1 launch)
    cores: int | None = None          # cores available to the run: no world size can pass min(N, cores)x

    @property
    def reference_world_size(self) -> int:
        """The world size speedup and efficiency are relative to: the smallest measured."""
        return min(p.world_size for p in self.points)

    def point_at(self, world_size: int) -> ScalingPoint:
        return next(p for p in self.points if p.world_size == world_size)


def mean_wall_time(launches: Sequence[Launch]) -> float | None:
    """Mean launch wall time (start-up and rendezvous included) over launches that recorded one."""
    walls = [launch.wall_time for launch in launches if launch.wall_time is not None]
    return float(np.mean(walls)) if walls else None


def comm_overlap(launches: Sequence[Launch]) -> float | None:
    """Share of all-reduce time hidden behind backward: 1 - exposed / total over kept, timed records."""
    timed = [(r.comm_time, r.comm_exposed_time) for launch in launches for r in launch.kept_records
             if r.comm_time is not None and r.comm_exposed_time is not None]
    total = sum(comm for comm, _ in timed)
    return None if total <= 0.0 else 1.0 - sum(exposed for _, exposed in timed) / total


@dataclass(frozen=True)
class ContentionRow:
    """Library-default against tuned threads at one world size: naive / tuned median step time."""

    world_size: int
    tuned_step_time: float
    naive_step_time: float
    ratio: Interval


def thread_contention(grouped: dict[str, dict[int, list[Launch]]], n_boot: int = 2000) -> list[ContentionRow]:
    """Where both policies ran: how much slower the library defaults were, with a bootstrap interval."""
    if not {"naive", "tuned"} <= set(grouped):
        return []
    rows = []
    for ws in sorted(set(grouped["naive"]) & set(grouped["tuned"])):
        naive = [run_step_times(launch) for launch in grouped["naive"][ws]]
        tuned = [run_step_times(launch) for launch in grouped["tuned"][ws]]
        rows.append(ContentionRow(ws, median_of_launches(tuned), median_of_launches(naive),
                                  bootstrap_ratio(naive, tuned, n_boot=n_boot)))
    return rows


def threads_per_rank(docs: dict[int, list[Launch]], cores: int) -> dict[int, int]:
    """Compute threads each rank really ran with (library default = every core it saw); world sizes whose
    launches do not record a thread plan are left out."""
    out = {}
    for ws, launches in docs.items():
        plans = launches[0].env.get("thread_plans")
        if plans:
            out[ws] = plans[0]["intra_op"] if plans[0]["intra_op"] is not None else cores
    return out


def fit_model(docs: dict[int, list[Launch]], medians: dict[int, float],
              bandwidth: float = DEFAULT_BANDWIDTH_BYTES_PER_S) -> tuple[ModelReport | None, str]:
    """The alpha-beta ring model plus serial and parallel compute, fitted to the measured points."""
    comm = {ws: comm_seconds(launches) for ws, launches in docs.items()}
    sizes = sorted(ws for ws in docs if comm[ws] is not None)
    if not any(ws > 1 for ws in sizes) or len(sizes) < 2:
        return None, "needs at least two instrumented world sizes, one of them above 1"
    env = docs[sizes[0]][0].env
    nbytes, cores = env["gradient_bytes"], env["cores_available"]
    threads = threads_per_rank(docs, cores)
    args = ([medians[ws] for ws in sizes], [comm[ws] for ws in sizes], nbytes, cores, threads)
    model = fit_scaling_model(sizes, *args)
    holdout = None
    if len(sizes) >= 3 and sum(ws > 1 for ws in sizes[:-1]) >= 1:
        holdout = dict(holdout_error(sizes, *args, held_out=sizes[-1]))
    larger = [sizes[-1] * k for k in (2, 4)]
    candidates = sorted(set(sizes) | set(range(1, 4 * sizes[-1] + 1)))
    best_here = best_world_size(model, candidates)
    multi_node = []
    for nodes in PREDICTION_NODES:
        cluster = replace(model, cores=cores * nodes)
        world = best_here * nodes
        predicted = cluster.predict(world, beta=bandwidth)
        multi_node.append({"nodes": nodes, "world_size": world, "bandwidth_bytes_per_s": bandwidth,
                           "predicted_step_time": predicted,
                           "predicted_speedup_vs_one_node": model.predict(best_here) / predicted})
    return ModelReport(model, holdout, best_here, {ws: model.predict(ws) for ws in larger}, multi_node), ""


def analyse_policy(policy: str, docs: dict[int, list[Launch]], n_boot: int = 2000) -> PolicyAnalysis:
    step_times = {ws: [run_step_times(d) for d in launches] for ws, launches in docs.items()}
    batch = {ws: launches[0].global_batch_size for ws, launches in docs.items()}
    over = {ws: launches[0].oversubscribed for ws, launches in docs.items()}
    points = speedup_curve(step_times, batch, oversubscribed=over, n_boot=n_boot)
    breakdowns = {ws: breakdown(launches) for ws, launches in docs.items()}
    sizes = sorted(docs)
    changes = [{"from": a, "to": b, "step_time_change": breakdowns[b].step_time - breakdowns[a].step_time,
                "by_cause": explain_change(breakdowns[a], breakdowns[b])} for a, b in zip(sizes, sizes[1:])]
    reference = min(sizes)
    kf = {p.world_size: karp_flatt(p.speedup.point, p.world_size // reference) if p.world_size > reference else None
          for p in points}
    model, note = fit_model(docs, {p.world_size: p.step_time.point for p in points})
    return PolicyAnalysis(policy, points, fastest(points).world_size, breakdowns,
                          {ws: comm_seconds(launches) for ws, launches in docs.items()}, kf,
                          {ws: dict(skew_summary(launches)) for ws, launches in docs.items()}, changes, model, note,
                          launch_counts={ws: len(launches) for ws, launches in docs.items()},
                          precision={ws: median_precision(times) for ws, times in step_times.items()},
                          wall_time={ws: mean_wall_time(launches) for ws, launches in docs.items()},
                          comm_overlap={ws: comm_overlap(launches) for ws, launches in docs.items()},
                          cpu={ws: cpu_use(launches) for ws, launches in docs.items()},
                          threads=threads_per_rank(docs, docs[sizes[0]][0].env.get("cores_available") or 1),
                          cores=docs[sizes[0]][0].env.get("cores_available"))


def analyse(series: LaunchSeries, n_boot: int = 2000) -> dict[str, PolicyAnalysis]:
    return {policy: analyse_policy(policy, by_ws, n_boot) for policy, by_ws in by_policy(series).items()}


def points_from_json(curve: list[dict]) -> list[ScalingPoint]:
    """A saved curve (``analysis_json``'s ``curve``) as points again, for the plots of another run."""
    return [ScalingPoint(p["world_size"], Interval(**p["step_time"]), Interval(**p["speedup"]),
                         Interval(**p["efficiency"]), p["samples_per_second"], p["oversubscribed"],
                         p.get("reference_world_size")) for p in curve]


def model_json(a: PolicyAnalysis) -> dict | None:
    """The fitted model and the model from measured parts; ``holdout`` is the parts model's when it has one
    (the fitted model's is then ``fitted_holdout``)."""
    out = {} if a.model is None else {**{k: v for k, v in asdict(a.model).items() if k != "model"},
                                      "fit": dict(asdict(a.model.model))}
    parts_holdout = holdout(a.parts)
    if parts_holdout is not None:
        out["fitted_holdout"] = out.get("holdout")
        out["holdout"] = parts_holdout
    if a.parts or a.parts_note:
        out["parts"] = {"predictions": a.parts, "note": a.parts_note}
    return out or None


def analysis_json(analysis: dict[str, PolicyAnalysis]) -> dict:
    """Plain JSON for the saved benchmark file and the report."""
    out = {}
    for policy, a in analysis.items():
        out[policy] = {
            "curve": [asdict(p) for p in a.points],
            "fastest_world_size": a.fastest_world_size,
            "breakdown": {str(ws): {**asdict(b), "shares": asdict(b.shares())} for ws, b in a.breakdowns.items()},
            "comm_seconds": {str(k): v for k, v in a.comm_seconds.items()},
            "karp_flatt": {str(k): v for k, v in a.karp_flatt.items()},
            "skew": {str(k): v for k, v in a.skew.items()},
            "changes": a.changes,
            "model": model_json(a),
            "model_note": a.model_note,
            "wall_time": {str(k): v for k, v in a.wall_time.items()},
            "comm_overlap": {str(k): v for k, v in a.comm_overlap.items()},
            "cpu": {str(k): v for k, v in a.cpu.items()},
            "launches": {str(k): v for k, v in a.launch_counts.items()},
            "precision": {str(k): v if math.isfinite(v) else None for k, v in a.precision.items()},
        }
    return out
