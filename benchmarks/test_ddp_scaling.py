"""DDP scaling benchmarks: one test per (thread policy, world size); each round is one whole launch.

A launch is the sample, not a step: steps inside a launch share its process placement, rendezvous and
warm caches, so they are correlated; separate launches are independent repetitions.
"""
import pytest

from benchmarks.suite import launch_summary


@pytest.mark.scaling_benchmark
def test_ddp_scaling(benchmark, run_launch, suite_options, thread_policy, world_size):
    docs = []
    benchmark.pedantic(lambda: docs.append(run_launch(world_size, thread_policy)),
                       rounds=suite_options.rounds, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(launch_summary(docs))
    assert all(len(d["run_step_times"]) == suite_options.steps for d in docs)
