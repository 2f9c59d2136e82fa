"""Performance group (run with --performance): each target measured as a ratio of two set-ups in one run.

Rounds alternate the two set-ups (A, B, A, B, ...) so that drift on a shared machine hits both alike.
The targets are recorded in extra_info (ratio, interval, target, target_met), so a later change that
loses one shows up in `pytest-benchmark compare`.
"""
import os

import numpy as np
import pytest

from benchmarks.performance import Comparison, data_time_share, launch_breakdown, plain_step_times
from lanemodel.analysis.breakdown import run_step_times

pytestmark = pytest.mark.performance
LAUNCH_TARGET_S = 3.0


def alternate(benchmark, rounds: int, first, second) -> tuple[list, list]:
    a, b = [], []

    def one_round():
        a.append(first(len(a)))
        b.append(second(len(b)))

    benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=0)
    return a, b


def test_two_tuned_ranks_against_one_plain_process(benchmark, perf_runner, suite_options):
    cores = len(os.sched_getaffinity(0))
    ddp, plain = alternate(
        benchmark, suite_options.plan.rounds,
        lambda k: perf_runner.launch(f"ddp_tuned_ws2_{k}", "tuned", 2),
        lambda k: perf_runner.plain_process(f"plain_{cores}threads_{k}", cores, suite_options.workload.preset))
    comparison = Comparison([run_step_times(d) for d in ddp], [plain_step_times(d) for d in plain])
    benchmark.extra_info.update(comparison.as_info(target=1.3), preset=suite_options.workload.preset,
                                plain_threads=cores)
    assert all(d.global_batch_size == p["records"][0]["global_batch_size"] for d, p in zip(ddp, plain))


@pytest.fixture(params=[1, 2, 4], ids=lambda ws: f"ws{ws}")
def perf_world_size(request, suite_options):
    if suite_options.workload.global_batch % request.param:
        pytest.skip(f"global batch {suite_options.workload.global_batch} does not split over {request.param} ranks")
    return request.param


def test_tuned_against_naive_threads(benchmark, perf_runner, suite_options, perf_world_size):
    tuned, naive = alternate(
        benchmark, suite_options.plan.rounds,
        lambda k: perf_runner.launch(f"tuned_ws{perf_world_size}_{k}", "tuned", perf_world_size),
        lambda k: perf_runner.launch(f"naive_ws{perf_world_size}_{k}", "naive", perf_world_size))
    comparison = Comparison([run_step_times(d) for d in tuned], [run_step_times(d) for d in naive])
    benchmark.extra_info.update(comparison.as_info(target=1.0), world_size=perf_world_size,
                                naive_oversubscribed=naive[0].oversubscribed)
    assert {d.policy for d in tuned} == {"tuned"} and {d.policy for d in naive} == {"naive"}


def test_instrumentation_overhead_and_data_time(benchmark, perf_runner, suite_options):
    timed, plain = alternate(
        benchmark, suite_options.plan.rounds,
        lambda k: perf_runner.launch(f"instrumented_ws2_{k}", "tuned", 2, instrument_comm=True),
        lambda k: perf_runner.launch(f"uninstrumented_ws2_{k}", "tuned", 2, instrument_comm=False))
    comparison = Comparison([run_step_times(d) for d in timed], [run_step_times(d) for d in plain])
    share = data_time_share(timed)
    benchmark.extra_info.update(comparison.as_info(target=1.01), data_time_share=share, data_time_target=0.02,
                                data_time_target_met=share < 0.02)
    assert all(r.comm_time is None for d in plain for r in d.records)
    assert all(r.comm_time > 0 for d in timed for r in d.records)


@pytest.mark.parametrize("spawn", ["fresh", "forkserver"])
def test_launch_to_first_step_tiny(benchmark, perf_runner, suite_options, perf_world_size, spawn):
    docs = []
    benchmark.pedantic(lambda: docs.append(perf_runner.launch(
        f"startup_{spawn}_tiny_ws{perf_world_size}_{len(docs)}", "tuned", perf_world_size, spawn, preset="tiny")),
        rounds=suite_options.plan.rounds, iterations=1, warmup_rounds=0)
    parts = [launch_breakdown(d) for d in docs]
    median = {key: float(np.median([p[key] for p in parts])) for key in parts[0]}
    benchmark.extra_info.update(median, world_size=perf_world_size, spawn=spawn, target_s=LAUNCH_TARGET_S,
                                target_met=median["launch_to_first_step_s"] < LAUNCH_TARGET_S)
    for p in parts:
        stages = p["interpreter_start_s"] + p["imports_s"] + p["rendezvous_s"] + p["model_and_data_setup_s"]
        assert stages == pytest.approx(p["launch_to_first_step_s"], abs=0.05)
