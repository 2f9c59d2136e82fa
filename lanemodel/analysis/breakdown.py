"""Per-world-size summaries of metrics documents: where a step's time goes, rank skew, curves.

Statistics use only a launch's kept steps (split from warm-up once, in
``Launch``) that every rank completed; the curves show every step so warm-up
stays visible. Steps from
several launches of one world size are pooled, so a longer launch weighs more.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import TypedDict

import numpy as np

from lanemodel.analysis.scaling import Breakdown
from lanemodel.records import Launch, StepRecord

STRAGGLER_SHARE = 0.6


class SkewSummary(TypedDict):
    median_skew: float | None
    straggler_rank: int | None
    straggler_share: float | None


def step_time_curve(launch: Launch) -> list[tuple[int, float]]:
    """(step, slowest rank's step seconds) for every step all ranks completed, warm-up included."""
    return list(launch.run_step_times.items())


def run_step_times(launch: Launch) -> np.ndarray:
    """Kept run step times in step order: the samples the speedup statistics consume."""
    return np.array(launch.kept_step_times)


def loss_curve(launch: Launch) -> list[tuple[int, float]]:
    """(step, mean loss over ranks) for every recorded step, warm-up included."""
    losses: dict[int, list[float]] = defaultdict(list)
    for record in launch.records:
        losses[record.step].append(record.loss)
    return [(step, float(np.mean(values))) for step, values in sorted(losses.items())]


def _rank_mean(records: Sequence[StepRecord], value: Callable[[StepRecord], float]) -> float:
    return float(np.mean([value(record) for record in records]))


def _exposed_comm(record: StepRecord) -> float:
    """All-reduce time backward had to wait for; 0 when communication was not instrumented."""
    return record.comm_exposed_time or 0.0


def _compute(record: StepRecord) -> float:
    """Forward and backward time, less the all-reduce wait inside backward_time."""
    return record.forward_time + record.backward_time - _exposed_comm(record)


def _world_size(docs: Sequence[Launch]) -> int:
    sizes = {doc.world_size for doc in docs}
    if len(sizes) != 1:
        raise ValueError(f"documents must share one world size, got {sorted(sizes)}")
    return sizes.pop()


def breakdown(docs: Sequence[Launch]) -> Breakdown:
    """Mean seconds per kept step at one world size, pooled over its launches.

    Each part is averaged over ranks per step; wait is how much longer the
    slowest rank took than the ranks' mean step time.
    """
    if not docs:
        raise ValueError("docs is empty: need at least one metrics document")
    world_size = _world_size(docs)
    rows = []
    for doc in docs:
        for step, records in doc.kept_records_by_step.items():
            run_time = doc.run_step_times[step]
            rows.append(
                (
                    run_time,
                    _rank_mean(records, _compute),
                    _rank_mean(records, attrgetter("optimizer_time")),
                    _rank_mean(records, _exposed_comm),
                    _rank_mean(records, attrgetter("data_time")),
                    # max(...) guards against rounding when all ranks took equally long.
                    max(run_time - _rank_mean(records, attrgetter("step_time")), 0.0),
                )
            )
    if not rows:
        raise ValueError(f"world size {world_size}: no kept step completed by every rank")
    step_time, compute, optimizer, exposed_comm, data, wait = np.mean(rows, axis=0)
    return Breakdown(
        world_size=world_size,
        step_time=float(step_time),
        compute_time=float(compute),
        optimizer_time=float(optimizer),
        exposed_comm_time=float(exposed_comm),
        data_time=float(data),
        wait_time=float(wait),
    )


def comm_seconds(docs: Sequence[Launch]) -> float | None:
    """Mean all-reduce seconds per kept step (rank mean, overlap with backward included).

    This is the quantity the alpha-beta model fits. None when no kept record
    carries comm_time, i.e. the launches ran without communication timing.
    """
    per_step = [
        _rank_mean(records, attrgetter("comm_time"))
        for doc in docs
        for records in doc.kept_records_by_step.values()
        if all(record.comm_time is not None for record in records)
    ]
    return float(np.mean(per_step)) if per_step else None


def skew_summary(docs: Sequence[Launch]) -> SkewSummary:
    """Median rank skew over kept steps and the rank that is persistently slowest, if any.

    straggler_share is the fraction of kept steps in which the most often
    slowest rank was slowest. That rank is named a straggler only when the
    share exceeds 60% and there is more than one rank to compare.
    """
    entries = [
        entry
        for doc in docs
        for entry in doc.skew
        if entry["step"] >= doc.warmup_steps_dropped
    ]
    if not entries:
        return SkewSummary(median_skew=None, straggler_rank=None, straggler_share=None)
    rank, count = Counter(entry["slowest_rank"] for entry in entries).most_common(1)[0]
    share = count / len(entries)
    is_straggler = share > STRAGGLER_SHARE and _world_size(docs) > 1
    return SkewSummary(
        median_skew=float(np.median([entry["skew"] for entry in entries])),
        straggler_rank=rank if is_straggler else None,
        straggler_share=share,
    )


def cpu_use(docs: Sequence[Launch]) -> dict | None:
    """What the kernel measured per kept step, rank means pooled over launches: CPU seconds of every thread
    and of the main (training) thread, the rest (gloo's all-reduce threads, autograd, intra-op workers),
    seconds runnable without a core, context switches; the breakdown's compute and the part of it the training
    thread spent waiting for a core (None in records without that field); the largest peak memory of any rank.

    None when no kept record carries the CPU fields (records older than schema version 3, or no /proc).
    """
    records = [r for doc in docs for r in doc.kept_records if r.cpu_time is not None]
    if not records:
        return None

    def mean(values: list) -> float | None:
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    step = mean([r.step_time for r in records])
    wait = mean([r.run_queue_wait for r in records])
    # compute runs on the training thread (autograd runs CPU work on the calling thread), so the part of it
    # longer than that thread's whole CPU time was spent runnable without a core, as far as it waited that long
    compute_waiting = mean([min(max(_compute(r) - r.main_thread_cpu_time, 0.0), r.main_thread_run_queue_wait)
                            for r in records if r.main_thread_run_queue_wait is not None
                            and r.main_thread_cpu_time is not None])
    rss = [meta.get("max_rss_mb") for doc in docs for meta in doc.rank_metas if meta.get("max_rss_mb") is not None]
    return {"cpu_time": mean([r.cpu_time for r in records]),
            "main_thread_cpu_time": mean([r.main_thread_cpu_time for r in records]),
            "other_threads_cpu_time": mean([r.cpu_time - r.main_thread_cpu_time for r in records
                                            if r.main_thread_cpu_time is not None]),
            "run_queue_wait": wait,
            "run_queue_wait_share": None if wait is None or not step else wait / step,
            "median_run_queue_wait_share": float(np.median([r.run_queue_wait / r.step_time for r in records
                                                           if r.run_queue_wait is not None and r.step_time > 0]))
            if wait is not None else None,
            "compute_time": mean([_compute(r) for r in records]),
            "compute_waiting_for_core": compute_waiting,
            "ctx_switches_voluntary": mean([r.ctx_switches_voluntary for r in records]),
            "ctx_switches_involuntary": mean([r.ctx_switches_involuntary for r in records]),
            "max_rss_mb": max(rss) if rss else None}
