"""DDP scaling benchmarks: one test per (thread policy, world size); each round is one whole launch.

A launch is the sample, not a step: steps inside a launch share its process placement, rendezvous and
warm caches, so they are correlated; separate launches are independent repetitions. The measurement session
(``lanemodel.session.ScalingSession``) decides which launches run and says why: warm-ups, --rounds blocks
(with ``--scaling-ab REF`` each a block of one REF and one working-tree launch in a drawn order), the session
plan's launches (--rounds auto) and the gate's adaptive ones. Each working-tree launch is one round of the
benchmark. In a session that compares, the gate's verdicts follow as items of their own
(``test_scaling_gate``), so that CI test pages list each one.
"""
import pytest

from lanemodel.session.runs import launch_summary
from lanemodel.suite.fixtures import benchmark_rounds, failed_launch_fails_test
from lanemodel.suite.gate_items import judge_item


@pytest.mark.scaling_benchmark
def test_ddp_scaling(benchmark, scaling_session, suite_options, thread_policy, world_size):
    key = (thread_policy, world_size)
    with failed_launch_fails_test():
        launches = scaling_session.measure(key, timed=benchmark_rounds(benchmark))
        benchmark.extra_info.update(launch_summary(launches))
        assert all(len(launch.run_step_times) == suite_options.workload.steps for launch in launches)
        scaling_session.probe(key)
        scaling_session.profile(key)


@pytest.mark.scaling_probe
def test_memory_bandwidth(benchmark, scaling_session):
    """Triad GB/s by 1..cores concurrent pinned processes: does the memory system run out as ranks are added?"""
    if not scaling_session.probes_bandwidth:
        pytest.skip("probes are off (--probes 0) or this is an A/B run")
    curve = benchmark.pedantic(scaling_session.measure_bandwidth, rounds=1, iterations=1)
    benchmark.extra_info["bandwidth"] = {str(k): v for k, v in curve.items()}
    assert curve[1]["total_gbs"] > 0


@pytest.mark.scaling_gate
def test_scaling_gate(scaling_outcome, thread_policy, world_size, gate_metric):
    """One verdict of the regression gate, run after every benchmark (``lanemodel.suite.gate_items``): failed when
    regressed, with the ratio, its interval, p, the launches and what it was compared with; an xfail when
    inconclusive (visible on every CI test page, never a failure: launches that cannot decide are not a
    regression); passed when the data show any slowdown is inside the limit. Only in sessions that compare."""
    judge_item(scaling_outcome, thread_policy, world_size, gate_metric)
