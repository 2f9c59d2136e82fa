"""Tests for per-world-size breakdowns of metrics documents, against hand-computed numbers."""

import numpy as np
import pytest

from lanemodel.analysis.breakdown import (
    breakdown,
    comm_seconds,
    cpu_use,
    loss_curve,
    run_step_times,
    skew_summary,
    step_time_curve,
)
from lanemodel.records import Launch

RECORD_DEFAULTS = {
    "loss": 1.0,
    "data_time": 0.01,
    "forward_time": 0.1,
    "backward_time": 0.2,
    "comm_time": None,
    "comm_exposed_time": None,
    "optimizer_time": 0.05,
    "lr": 1e-3,
    "total_elapsed": 0.0,
    "start_time": 0.0,
    "end_time": 0.0,
    "comm_buckets": None,
}


def make_doc(
    ranks_per_step: list[list[dict]],
    warmup: int = 0,
    oversubscribed: bool = False,
    wall_time: float | None = 10.0,
) -> Launch:
    """A launch as the engine records it; ranks_per_step[step][rank] overrides that rank's record fields."""
    return Launch.from_dict(make_raw(ranks_per_step, warmup, oversubscribed, wall_time))


def make_raw(
    ranks_per_step: list[list[dict]],
    warmup: int = 0,
    oversubscribed: bool = False,
    wall_time: float | None = 10.0,
) -> dict:
    """A metrics document; ranks_per_step[step][rank] overrides that rank's record fields.

    Every rank needs a step_time. The run step time is the slowest rank's, and
    skew is the spread between the slowest and the fastest rank.
    """
    world_size = len(ranks_per_step[0])
    records = [
        {
            **RECORD_DEFAULTS,
            **fields,
            "step": step,
            "rank": rank,
            "world_size": world_size,
            "batch_size": 8 // world_size,
            "global_batch_size": 8,
        }
        for step, ranks in enumerate(ranks_per_step)
        for rank, fields in enumerate(ranks)
    ]
    step_times = [[fields["step_time"] for fields in ranks] for ranks in ranks_per_step]
    return {
        "config": {"world_size": world_size, "global_batch_size": 8, "steps": len(ranks_per_step), "threads": "tuned"},
        "env": {"oversubscribed": oversubscribed, "gradient_bytes": 4_000_000},
        "launch": None if wall_time is None else {"wall_time": wall_time},
        "warmup_steps_dropped": warmup,
        "run_step_times": {str(step): max(times) for step, times in enumerate(step_times)},
        "skew": [
            {"step": step, "skew": max(times) - min(times), "slowest_rank": int(np.argmax(times))}
            for step, times in enumerate(step_times)
        ],
        "error": None,
        "records": records,
    }


def timings(
    step: float,
    forward: float,
    backward: float,
    exposed: float,
    comm: float,
    optimizer: float,
    data: float,
) -> dict:
    """One rank's timers for one step, as record fields."""
    return {
        "step_time": step,
        "forward_time": forward,
        "backward_time": backward,
        "comm_exposed_time": exposed,
        "comm_time": comm,
        "optimizer_time": optimizer,
        "data_time": data,
    }


WARMUP = {"step_time": 5.0, "forward_time": 3.0, "comm_time": 9.0, "comm_exposed_time": 1.0}


def instrumented_doc() -> dict:
    """Two ranks, one warm-up step, two kept steps; rank 1 is slower in step 2.

    step 1: run 1.0; compute (0.2+0.5-0.1 + 0.2+0.4-0.1)/2 = 0.55; optimizer (0.1+0.05)/2 = 0.075;
            exposed 0.1; data 0.04; wait 1.0 - (1.0+0.8)/2 = 0.1; comm (0.3+0.3)/2 = 0.3
    step 2: run 0.8; compute (0.5 + 0.5)/2 = 0.5; optimizer 0.1; exposed 0.1; data 0.02;
            wait 0.8 - 0.7 = 0.1; comm (0.2+0.6)/2 = 0.4
    """
    return make_doc(
        [
            [WARMUP, WARMUP],
            [
                timings(1.0, 0.2, 0.5, 0.1, 0.3, 0.1, 0.05),
                timings(0.8, 0.2, 0.4, 0.1, 0.3, 0.05, 0.03),
            ],
            [
                timings(0.6, 0.2, 0.3, 0.0, 0.2, 0.1, 0.02),
                timings(0.8, 0.2, 0.5, 0.2, 0.6, 0.1, 0.02),
            ],
        ],
        warmup=1,
    )


def uninstrumented_doc() -> dict:
    """Two equal ranks, no warm-up, comm not timed: compute 0.1+0.2 = 0.3, optimizer 0.1, wait 0."""
    rank = {"step_time": 0.5, "optimizer_time": 0.1, "data_time": 0.1}
    return make_doc([[rank, rank]])


# --- kept steps and curves -------------------------------------------------------------


def test_kept_records_and_run_step_times_drop_warmup():
    doc = instrumented_doc()
    assert sorted({record.step for record in doc.kept_records}) == [1, 2]
    assert len(doc.kept_records) == 4
    np.testing.assert_allclose(run_step_times(doc), [1.0, 0.8])


def test_step_time_curve_keeps_warmup_in_step_order():
    raw = make_raw([[{"step_time": 1.0}]] * 3, warmup=1)
    raw["run_step_times"] = {"10": 0.3, "2": 0.8, "0": 5.0, "1": 1.0}
    doc = Launch.from_dict(raw)
    assert step_time_curve(doc) == [(0, 5.0), (1, 1.0), (2, 0.8), (10, 0.3)]
    np.testing.assert_allclose(run_step_times(doc), [1.0, 0.8, 0.3])


def test_loss_curve_is_rank_mean_per_step_including_warmup():
    doc = make_doc(
        [
            [{"step_time": 1.0, "loss": 2.0}, {"step_time": 1.0, "loss": 3.0}],
            [{"step_time": 1.0, "loss": 1.0}, {"step_time": 1.0, "loss": 2.0}],
        ],
        warmup=1,
    )
    assert loss_curve(doc) == [(0, 2.5), (1, 1.5)]


# --- breakdown -------------------------------------------------------------------------


def test_breakdown_subtracts_exposed_comm_and_measures_wait():
    parts = breakdown([instrumented_doc()])
    assert parts.world_size == 2
    assert parts.step_time == pytest.approx(0.9)
    assert parts.compute_time == pytest.approx((0.55 + 0.5) / 2)
    assert parts.optimizer_time == pytest.approx((0.075 + 0.1) / 2)
    assert parts.exposed_comm_time == pytest.approx(0.1)
    assert parts.data_time == pytest.approx(0.03)
    assert parts.wait_time == pytest.approx(0.1)


def test_breakdown_pools_steps_over_launches_and_treats_null_exposed_as_zero():
    parts = breakdown([instrumented_doc(), uninstrumented_doc()])
    assert parts.step_time == pytest.approx((1.0 + 0.8 + 0.5) / 3)
    assert parts.compute_time == pytest.approx((0.55 + 0.5 + 0.3) / 3)
    assert parts.optimizer_time == pytest.approx((0.075 + 0.1 + 0.1) / 3)
    assert parts.exposed_comm_time == pytest.approx((0.1 + 0.1 + 0.0) / 3)
    assert parts.data_time == pytest.approx((0.04 + 0.02 + 0.1) / 3)
    assert parts.wait_time == pytest.approx((0.1 + 0.1 + 0.0) / 3)


def test_breakdown_skips_steps_not_completed_by_every_rank():
    raw = instrumented_doc().to_dict()
    del raw["run_step_times"]["2"]
    parts = breakdown([Launch.from_dict(raw)])
    assert parts.step_time == pytest.approx(1.0)
    assert parts.wait_time == pytest.approx(0.1)


def test_breakdown_attributes_the_whole_step_time():
    seconds = breakdown([instrumented_doc()]).attributed_seconds()
    assert sum(seconds.values()) == pytest.approx(0.9)
    assert seconds["other"] == pytest.approx(0.9 - 0.6125 - 0.1 - 0.03 - 0.1)


def test_breakdown_rejects_mixed_world_sizes_and_runs_without_kept_steps():
    single = make_doc([[{"step_time": 0.5}]])
    with pytest.raises(ValueError, match="one world size"):
        breakdown([instrumented_doc(), single])
    with pytest.raises(ValueError, match="no kept step"):
        breakdown([make_doc([[WARMUP, WARMUP]], warmup=1)])
    with pytest.raises(ValueError, match="empty"):
        breakdown([])


# --- comm_seconds ----------------------------------------------------------------------


def test_comm_seconds_averages_over_ranks_and_kept_steps():
    assert comm_seconds([instrumented_doc()]) == pytest.approx(0.35)


def test_comm_seconds_ignores_uninstrumented_launches_and_is_none_without_any():
    assert comm_seconds([instrumented_doc(), uninstrumented_doc()]) == pytest.approx(0.35)
    assert comm_seconds([uninstrumented_doc()]) is None


# --- skew_summary ----------------------------------------------------------------------


def two_ranks(step_times: list[tuple[float, float]], warmup: int = 0) -> dict:
    return make_doc([[{"step_time": a}, {"step_time": b}] for a, b in step_times], warmup=warmup)


def test_skew_summary_names_a_rank_slowest_in_most_kept_steps():
    # Warm-up step 0 has rank 0 slowest; kept steps: rank 1 slowest in 3 of 4.
    doc = two_ranks([(9.0, 1.0), (1.0, 1.2), (1.0, 1.1), (1.3, 1.0), (1.0, 1.4)], warmup=1)
    summary = skew_summary([doc])
    assert summary["straggler_rank"] == 1
    assert summary["straggler_share"] == pytest.approx(0.75)
    assert summary["median_skew"] == pytest.approx(np.median([0.2, 0.1, 0.3, 0.4]))


def test_skew_summary_pools_launches_and_needs_more_than_60_percent():
    # Rank 1 slowest in 3 of 5 pooled kept steps: exactly 60% is not enough.
    first = two_ranks([(1.0, 1.2), (1.0, 1.1), (1.3, 1.0)])
    second = two_ranks([(1.0, 1.4), (1.5, 1.0)])
    summary = skew_summary([first, second])
    assert summary["straggler_rank"] is None
    assert summary["straggler_share"] == pytest.approx(0.6)


def test_skew_summary_names_no_straggler_for_a_single_rank():
    doc = make_doc([[{"step_time": 1.0}], [{"step_time": 1.1}]])
    summary = skew_summary([doc])
    assert summary["straggler_rank"] is None
    assert summary["straggler_share"] == 1.0
    assert summary["median_skew"] == 0.0


def test_skew_summary_without_kept_steps_is_empty():
    doc = two_ranks([(1.0, 2.0)], warmup=1)
    assert skew_summary([doc]) == {
        "median_skew": None,
        "straggler_rank": None,
        "straggler_share": None,
    }


def test_cpu_use_averages_ranks_and_steps_and_splits_the_training_thread_from_the_rest():
    cpu = {"cpu_time": 0.4, "main_thread_cpu_time": 0.1, "run_queue_wait": 0.05, "ctx_switches_voluntary": 10,
           "ctx_switches_involuntary": 3}
    doc = make_doc([[{"step_time": 0.5, **cpu}, {"step_time": 0.5, **cpu, "run_queue_wait": 0.15}]] * 3, warmup=1)
    doc.rank_metas = [{"max_rss_mb": 900.0}, {"max_rss_mb": 1100.0}]
    use = cpu_use([doc])
    assert use["cpu_time"] == pytest.approx(0.4) and use["other_threads_cpu_time"] == pytest.approx(0.3)
    assert use["run_queue_wait"] == pytest.approx(0.1) and use["run_queue_wait_share"] == pytest.approx(0.2)
    assert use["median_run_queue_wait_share"] == pytest.approx(0.2)
    assert use["ctx_switches_involuntary"] == 3 and use["max_rss_mb"] == 1100.0
    assert use["compute_waiting_for_core"] is None          # records without the training thread's wait


def test_compute_is_split_into_on_a_core_and_waiting_for_one():
    """compute = forward + backward - exposed all-reduce = 0.3 s. One rank's training thread ran 0.2 s and
    waited 0.05 s for a core (waiting: 0.05 s, all it waited); the other ran 0.1 s and waited 0.5 s (0.2 s of
    compute it cannot have been running)."""
    busy = {"step_time": 0.5, "cpu_time": 0.3}
    doc = make_doc([[{**busy, "main_thread_cpu_time": 0.2, "main_thread_run_queue_wait": 0.05},
                     {**busy, "main_thread_cpu_time": 0.1, "main_thread_run_queue_wait": 0.5}]] * 2)
    use = cpu_use([doc])
    assert use["compute_time"] == pytest.approx(0.3) and use["compute_waiting_for_core"] == pytest.approx(0.125)


def test_cpu_use_is_none_for_records_without_the_cpu_fields():
    assert cpu_use([make_doc([[{"step_time": 0.5}]] * 3)]) is None
