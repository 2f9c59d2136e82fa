"""DDP scaling benchmarks: one test per (thread policy, world size); each round is one whole launch.

A launch is the sample, not a step: steps inside a launch share its process placement, rendezvous and
warm caches, so they are correlated; separate launches are independent repetitions. Where the gate
cannot decide yet, or where the session plan (``launch_plan``, --rounds auto) gives it more, the world size gets
more launches (``extend_launches``). With ``--scaling-ab REF`` each round is a block of one REF launch and one
working-tree launch (``ab_block``), in a drawn order. Warm-up launches come first and never count: the first
launch of a session ran up to 2x slower than the rest on this machine kind. A planned session runs its
warm-ups up front, short, one per world size, as the plan's cost probes. In a session that compares, the
gate's verdicts follow as items of their own (``test_scaling_gate``), so that CI test pages list each one.
"""
import pytest

from benchmarks.abtest import REF
from benchmarks.gate_items import judge_item
from benchmarks.suite import launch_summary


@pytest.mark.scaling_benchmark
def test_ddp_scaling(benchmark, run_launch, launch_plan, extend_launches, ab_block, probe_causes, profile_launch,
                     suite_options, thread_policy, world_size):
    before, after = ab_block(world_size, thread_policy)
    for _ in range(suite_options.warmup_launches - (launch_plan is not None)):
        run_launch(world_size, thread_policy, warmup=True)
        if suite_options.scaling_ab:
            run_launch(world_size, thread_policy, warmup=True, side=REF)
    launches = []
    benchmark.pedantic(lambda: launches.append(run_launch(world_size, thread_policy)), setup=before,
                       teardown=after, rounds=suite_options.rounds, iterations=1, warmup_rounds=0)
    launches += extend_launches(benchmark, world_size, thread_policy)
    benchmark.extra_info.update(launch_summary(launches))
    assert all(len(launch.run_step_times) == suite_options.steps for launch in launches)
    probe_causes(world_size, thread_policy)
    profile_launch(world_size, thread_policy)


@pytest.mark.scaling_probe
def test_memory_bandwidth(benchmark, measure_bandwidth, suite_options):
    """Triad GB/s by 1..cores concurrent pinned processes: does the memory system run out as ranks are added?"""
    if not suite_options.probes or suite_options.scaling_ab:
        pytest.skip("probes are off (--probes 0) or this is an A/B run")
    curve = benchmark.pedantic(measure_bandwidth, rounds=1, iterations=1)
    benchmark.extra_info["bandwidth"] = {str(k): v for k, v in curve.items()}
    assert curve[1]["total_gbs"] > 0


@pytest.mark.scaling_gate
def test_scaling_gate(scaling_outcome, thread_policy, world_size, gate_metric):
    """One verdict of the regression gate, run after every benchmark (``benchmarks.gate_items``): failed when
    regressed, with the ratio, its interval, p, the launches and what it was compared with; an xfail when
    inconclusive (visible on every CI test page, never a failure: launches that cannot decide are not a
    regression); passed when the data show any slowdown is inside the limit. Only in sessions that compare."""
    judge_item(scaling_outcome, thread_policy, world_size, gate_metric)
