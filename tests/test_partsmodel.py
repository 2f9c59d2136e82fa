"""The scaling model from measured parts: the two bounds, the one fitted term, and predictions made without
the predicted world size's own step time."""
import pytest

from lanemodel.analysis.partsmodel import MeasuredParts, fit_parts_model, holdout, measured_parts, prediction_rows
from lanemodel.engine.allreduce_bench import bucket_sizes


def parts(ws, cores_in_use, wall, cpu, ar_wall=0.0, ar_cpu=0.0):
    return MeasuredParts(ws, cores_in_use, wall, cpu, ar_wall, ar_cpu)


# 2 cores, one thread per rank from 2 ranks on: the CPU every rank needs, shared by the cores in use.
SWEEP = {1: parts(1, 2, 0.14, 0.28), 2: parts(2, 2, 0.16, 0.16, 0.06, 0.04),
         4: parts(4, 2, 0.11, 0.11, 0.19, 0.05), 8: parts(8, 2, 0.08, 0.08, 0.40, 0.06)}


def test_the_cores_bound_spreads_every_ranks_cpu_over_the_cores_in_use():
    assert SWEEP[4].cores_bound == pytest.approx(4 * (0.11 + 0.05) / 2)
    assert SWEEP[1].cores_bound == pytest.approx(0.14)          # 2 threads on 2 cores
    assert SWEEP[8].latency_bound == pytest.approx(0.48)


def test_the_efficiency_is_fitted_where_the_cores_bound_explains_the_step():
    # measured = 1.1 x cores bound everywhere: the fit recovers 1.1 and predicts the held-out size exactly
    measured = {ws: 1.1 * p.cores_bound for ws, p in SWEEP.items()}
    model = fit_parts_model(SWEEP, measured, fit_on=(1, 2, 4))
    assert model.efficiency == pytest.approx(1.1)
    assert model.predict(8) == pytest.approx(measured[8])
    assert model.binding(8) == "cores"


def test_a_link_bound_world_size_is_predicted_by_the_latency_bound_and_not_fitted_on():
    slow_link = {**SWEEP, 2: parts(2, 2, 0.16, 0.16, 0.45, 0.04)}     # all-reduce 0.45 s: the link binds
    measured = {1: 0.154, 2: 0.62, 4: 1.1 * SWEEP[4].cores_bound}
    model = fit_parts_model(slow_link, measured)
    assert model.binding(2) == "latency" and model.predict(2) == pytest.approx(0.61)
    assert model.fitted_on == (1, 2, 4) and model.efficiency == pytest.approx(1.1)   # 2 did not move it


def test_without_a_world_size_the_cores_bound_can_explain_the_efficiency_is_one():
    model = fit_parts_model({2: parts(2, 2, 0.1, 0.01, 0.5, 0.01)}, {2: 0.58})
    assert model.efficiency == 1.0 and model.predict(2) == pytest.approx(0.6)


def test_each_row_is_predicted_without_its_own_step_time():
    measured = {1: 0.154, 2: 0.22, 4: 0.35, 8: 0.60}
    rows = prediction_rows(SWEEP, measured, {2: 0.05, 4: 0.2, 8: 0.5})
    assert [r["world_size"] for r in rows] == [1, 2, 4, 8]
    assert rows[-1]["fitted_on"] == [1, 2, 4]
    expected = fit_parts_model(SWEEP, measured, fit_on=(1, 2, 4)).predict(8)
    assert rows[-1]["predicted"] == pytest.approx(expected)
    assert rows[-1]["relative_error"] == pytest.approx((expected - 0.60) / 0.60)
    assert rows[1]["allreduce_relative_error"] == pytest.approx((0.06 - 0.05) / 0.05)
    assert rows[0]["predicted_allreduce"] is None          # one rank does not communicate
    held = holdout(rows)
    assert held["world_size"] == 8 and held["model"] == "measured parts"
    assert holdout(rows[:2]) is None                       # two sizes: nothing left to hold out


def test_a_missing_probe_leaves_the_world_size_out():
    assert measured_parts(4, 2, 0.1, None, {"gradient": {"wall": 0.2, "cpu": 0.05}}) is None
    assert measured_parts(4, 2, 0.1, 0.1, None) is None
    assert measured_parts(1, 2, 0.1, 0.2, None).allreduce_wall == 0.0


def test_buckets_cut_the_gradient_as_ddp_does():
    cap = 25 * 1024 * 1024
    assert bucket_sizes(50_658_720, 25) == [cap, 50_658_720 - cap]
    assert bucket_sizes(4096, 25) == [4096]
    with pytest.raises(ValueError, match="positive"):
        bucket_sizes(0, 25)


@pytest.mark.engine
def test_the_microbenchmark_times_out_naming_the_world_size_and_leaves_no_rank(tmp_path):

    from multiprocessing import forkserver

    from lanemodel.engine.allreduce_bench import AllreduceBenchError, measure_allreduce
    from lanemodel.engine.threads import available_cpus, plan_threads
    from lanemodel.engine.torchrunner import descendants

    # 2,000 reps of every message size take 20 s or more; forked ranks start in well under the 1 s allowed
    with pytest.raises(AllreduceBenchError, match="2 ranks did not finish within 1 s"):
        measure_allreduce(plan_threads("tuned", 2, available_cpus()), [4096], tmp_path, timeout_s=1.0, reps=2000)
    server = forkserver._forkserver._forkserver_pid     # the ranks are forked from it, over loopback
    assert server is not None and descendants(server) == []


@pytest.mark.engine
def test_the_microbenchmark_all_reduces_the_buckets_on_two_ranks(tmp_path):
    from lanemodel.engine.allreduce_bench import MESSAGE_SIZES, measure_allreduce
    from lanemodel.engine.threads import available_cpus, plan_threads

    result = measure_allreduce(plan_threads("tuned", 2, available_cpus()), [1 << 20, 1 << 16], tmp_path,
                               timeout_s=120, reps=2)
    assert result["world_size"] == 2 and result["buckets"] == [1 << 20, 1 << 16]
    assert 0 < result["gradient"]["wall"] < 5 and result["gradient"]["cpu"] > 0
    assert sorted(result["messages"]) == sorted(MESSAGE_SIZES)


def test_the_ring_at_the_link_rate_sends_2_n_minus_1_over_n_of_the_gradient_over_each_link():
    from lanemodel.analysis.partsmodel import ring_at_link_rate

    assert ring_at_link_rate(2, 50e6, 1.0) == pytest.approx(0.4)            # 50 MB at 125 MB/s
    assert ring_at_link_rate(4, 50e6, 0.5) == pytest.approx(1.5 * 50e6 / 62.5e6)
