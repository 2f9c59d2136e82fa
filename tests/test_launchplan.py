"""The session plan: launches per world size within a time budget, where they narrow the report's intervals most."""
import pytest

from lanemodel.analysis.launchplan import (
    MIN_LAUNCHES,
    estimate_costs,
    importance,
    plan_launches,
    probe_seconds,
)
from lanemodel.settings import PLANNED_MIN_ROUNDS, parse_settings

# one launch's seconds at 1-16 ranks on a 2-core guest (tiny, fresh interpreters), and samples per second
COSTS = {("tuned", 16): 71.0, ("tuned", 8): 33.0, ("tuned", 4): 17.0, ("tuned", 2): 9.0, ("tuned", 1): 7.0}
THROUGHPUT = {("tuned", 16): 10.0, ("tuned", 8): 18.0, ("tuned", 4): 35.0, ("tuned", 2): 52.0, ("tuned", 1): 64.0}


def test_the_plan_stays_within_the_budget_and_gives_every_world_size_a_launch():
    plan = plan_launches(COSTS, THROUGHPUT, budget_s=240, overhead_s=60)
    assert all(n >= MIN_LAUNCHES for n in plan.launches.values())
    assert plan.seconds <= 240
    assert 240 - plan.seconds < min(COSTS.values())      # and leaves less than one more launch unspent
    assert not plan.over_budget


def test_cheap_world_sizes_that_the_report_leans_on_get_the_extra_launches():
    plan = plan_launches(COSTS, THROUGHPUT, budget_s=240, overhead_s=60)
    assert plan.launches["tuned", 1] > plan.launches["tuned", 4] >= plan.launches["tuned", 16]
    assert plan.launches["tuned", 2] > plan.launches["tuned", 4]


def test_a_larger_budget_buys_launches_at_every_world_size_up_to_the_most_allowed():
    plan = plan_launches(COSTS, THROUGHPUT, budget_s=1e6, max_launches=7)
    assert set(plan.launches.values()) == {7}


def test_a_budget_below_the_minimum_still_runs_one_launch_each_and_says_it_is_over():
    plan = plan_launches(COSTS, THROUGHPUT, budget_s=60)
    assert set(plan.launches.values()) == {1}
    assert plan.over_budget and "over it" in plan.headline()


def test_finished_world_sizes_keep_their_launches_and_the_spent_time_counts():
    done = {("tuned", 16): 1, ("tuned", 8): 2}
    plan = plan_launches(COSTS, THROUGHPUT, budget_s=240, spent_s=140, overhead_s=30, done=done,
                         finished=[("tuned", 16)])
    assert plan.launches["tuned", 16] == 1 and plan.launches["tuned", 8] >= 2
    assert plan.seconds <= 240
    assert plan.committed_after(("tuned", 8)) == pytest.approx(17 + 9 + 7 + 30)


def test_the_smallest_world_size_the_fastest_and_the_largest_weigh_most():
    weights, reasons = importance({1: 64.0, 2: 52.0, 4: 35.0}, [1, 2, 4, 8, 16])
    assert weights == {1: 6.0, 2: 2.0, 4: 1.0, 8: 1.0, 16: 2.0}
    assert "every speedup" in reasons[1][0] and "second fastest" in reasons[2][0] and "held-out" in reasons[16][0]


def test_costs_of_unmeasured_world_sizes_are_interpolated_or_scaled_from_measured_ones():
    costs = estimate_costs({1: 7.0, 16: 71.0}, [1, 2, 4, 8, 16], cores=2)
    assert costs[8] == pytest.approx(7 + 64 * 7 / 15)
    assert estimate_costs({1: 7.0}, [1, 2, 16], cores=2) == {1: 7.0, 2: 7.0, 16: 56.0}
    assert estimate_costs({16: 72.0}, [1, 16], cores=2)[1] == pytest.approx(9.0)


def test_probe_seconds_count_one_rank_alone_and_an_all_reduce_per_world_size_above_one():
    assert probe_seconds({("tuned", 1): 7.0, ("tuned", 2): 10.0}, rank_alone_s=7.0) == pytest.approx(7 + 0.8)


def test_bad_costs_are_refused():
    with pytest.raises(ValueError, match="> 0 s"):
        plan_launches({("tuned", 1): 0.0}, {("tuned", 1): 1.0}, budget_s=10)
    with pytest.raises(ValueError, match="no world size"):
        plan_launches({}, {}, budget_s=10)


def test_auto_rounds_plan_within_the_session_budget_and_explicit_rounds_run_exactly():
    auto = parse_settings({})
    assert auto.plan.rounds == PLANNED_MIN_ROUNDS == MIN_LAUNCHES and auto.plan.session_budget_s > 0
    explicit = parse_settings({"rounds": "2"})
    assert (explicit.plan.rounds, explicit.plan.max_rounds, explicit.plan.session_budget_s) == (2, 2, 0.0)
    precise = parse_settings({"scaling_precise": "1"})
    assert (precise.plan.rounds, precise.plan.max_rounds, precise.plan.session_budget_s) == (10, 20, 0.0)
    budgeted = parse_settings({"rounds": "2", "scaling_session_budget_s": "100"})
    assert (budgeted.plan.rounds, budgeted.plan.session_budget_s) == (2, 100.0)
    ab = parse_settings({"scaling_ab": "HEAD~1"})
    assert (ab.plan.rounds, ab.plan.max_rounds, ab.plan.session_budget_s) == (8, 16, 0.0)
