import pytest

from lanemodel.engine.threads import ENV_CPUS, ENV_INTRA, ThreadPlan, is_oversubscribed, parse_policy, plan_threads


def test_parse_policy():
    assert parse_policy("naive") == "naive" and parse_policy("tuned") == "tuned" and parse_policy("3") == 3
    with pytest.raises(ValueError, match="naive, tuned or a positive integer, got 'fast'"):
        parse_policy("fast")
    with pytest.raises(ValueError, match="positive integer, got .0."):
        parse_policy("0")


def test_tuned_gives_disjoint_cores_and_floor_of_cores_per_rank():
    plans = plan_threads("tuned", 2, [0, 1, 2, 3, 4])
    assert [p.cpus for p in plans] == [(0, 1), (2, 3)]
    assert [p.intra_op for p in plans] == [2, 2]
    assert not is_oversubscribed(plans, 5)


def test_tuned_counts_data_workers_in_the_budget():
    plans = plan_threads("tuned", 2, [0, 1, 2, 3, 4, 5], data_workers=1)
    assert [p.intra_op for p in plans] == [2, 2]
    assert not is_oversubscribed(plans, 6)


def test_tuned_beyond_core_count_shares_cores_and_is_flagged():
    plans = plan_threads("tuned", 4, [0, 1])
    assert [p.cpus for p in plans] == [(0,), (1,), (0,), (1,)]
    assert all(p.intra_op == 1 for p in plans)
    assert is_oversubscribed(plans, 2)


def test_naive_takes_library_defaults_and_oversubscribes_past_one_rank():
    one, two = plan_threads("naive", 1, [0, 1]), plan_threads("naive", 2, [0, 1])
    assert one[0].intra_op is None and one[0].cpus is None
    assert not is_oversubscribed(one, 2)
    assert is_oversubscribed(two, 2)        # each rank takes both cores: 4 threads on 2 cores


def test_fixed_count_and_bad_world_size():
    plans = plan_threads(3, 2, [0, 1, 2, 3, 4, 5])
    assert [p.intra_op for p in plans] == [3, 3] and plans[0].cpus is None
    with pytest.raises(ValueError, match="world size must be at least 1, got 0"):
        plan_threads("tuned", 0, [0, 1])


def test_env_sets_or_clears_thread_variables():
    base = {"OMP_NUM_THREADS": "8", "PATH": "/bin", ENV_CPUS: "7"}
    naive = ThreadPlan("naive", None, None, None, 0).env(base)
    assert "OMP_NUM_THREADS" not in naive and ENV_CPUS not in naive and naive["PATH"] == "/bin"
    tuned = ThreadPlan("tuned", 1, 1, (1,), 0).env(base)
    assert tuned["OMP_NUM_THREADS"] == "1" and tuned["MKL_NUM_THREADS"] == "1"
    assert tuned[ENV_INTRA] == "1" and tuned[ENV_CPUS] == "1"
