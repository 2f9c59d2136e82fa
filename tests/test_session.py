"""The measurement session's decisions, driven by a fake launcher: no process, a virtual clock, launch walls and
medians given. Each test would fail if the session launched in another order, or for another reason."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from test_breakdown import make_raw

from lanemodel.analysis.gate import Series
from lanemodel.engine.worktree import RefCode
from lanemodel.records import Launch
from lanemodel.session.abtest import CURRENT, REF, ABSession
from lanemodel.session.against import Baseline
from lanemodel.session.errors import LaunchFailed, NotRun, SessionError
from lanemodel.session.opening import gate_settings, open_session
from lanemodel.session.session import ScalingSession, measurement_order
from lanemodel.settings import parse_settings


class FakeLauncher:
    """Launches that take ``walls[key](n)`` seconds of the virtual clock and have step times
    ``medians[(side, key)](n)`` for their n-th launch; records every call in order."""

    def __init__(self, walls, medians, fail_at: tuple | None = None):
        self.walls, self.medians, self.fail_at = walls, medians, fail_at
        self.now = 0.0
        self.calls: list[tuple[str, str, int, str]] = []      # (side, policy, world size, name)
        self.counts: dict[tuple, int] = {}

    def clock(self) -> float:
        return self.now

    def launch(self, policy, world_size, name, *, steps=None, code=None, on_step=None):
        side = REF if code is not None else CURRENT
        key = (policy, world_size)
        if self.fail_at == (side, key):
            raise KeyboardInterrupt("SIGTERM")
        n = self.counts[side, key] = self.counts.get((side, key), -1) + 1
        self.calls.append((side, policy, world_size, name))
        wall = self.walls[key](n) * ((steps or 6) / 6)
        self.now += wall
        median = self.medians.get((side, key), self.medians.get((CURRENT, key)))(n)
        raw = make_raw([[{"step_time": median}] * world_size] * (steps or 6), warmup=1, wall_time=wall)
        raw["config"]["threads"] = policy
        raw["rank_metas"] = [{"rank": rank, "max_rss_mb": 1000.0, "shared_rss_mb": 400.0} for rank in range(world_size)]
        return Launch.from_dict(raw), None

    def rank_alone(self, policy, world_size, on_step=None):
        raise AssertionError("probes are off in these tests")

    def allreduce(self, policy, world_size, gradient_bytes):
        raise AssertionError("probes are off in these tests")

    def profiled(self, policy, world_size, on_step=None):
        raise AssertionError("profiling is off in these tests")

    def bandwidth(self):
        raise AssertionError("probes are off in these tests")


def settings(**given):
    base = {"world_sizes": "1,2", "steps": "6", "drop_warmup": "1", "probes": "0", "results_dir": "unused"}
    return parse_settings({**base, **{name: str(value) for name, value in given.items()}})


def session_of(opts, launcher: FakeLauncher, against=None, memory=None) -> tuple[ScalingSession, list[str]]:
    lines: list[str] = []
    session = ScalingSession(opts, gate_settings(opts), launcher, order=measurement_order(opts), against=against,
                             cores=2, write=lines.append, live=False, clock=launcher.clock, memory=memory)
    return session, lines


def constant(value):
    return lambda n: value


def test_a_planned_session_stops_a_world_size_short_when_the_budget_runs_out():
    # world size 2 costs 10 s in its first launch, as planned, then 40 s: the plan's later launches no longer fit
    launcher = FakeLauncher({("tuned", 1): constant(4.0), ("tuned", 2): lambda n: 10.0 if n == 0 else 40.0},
                            {(CURRENT, ("tuned", 1)): constant(0.2), (CURRENT, ("tuned", 2)): constant(0.12)})
    opts = settings(scaling_session_budget_s=100)
    session, lines = session_of(opts, launcher)
    assert session.order == [("tuned", 2), ("tuned", 1)]          # the costliest first
    for key in session.order:
        session.measure(key)
    assert any(line.startswith("plan: ") for line in lines)       # the plan is printed before measuring
    planned = next(line for line in session.extra_launches if "world size 2 (tuned): launches 1 ->" in line)
    target = int(planned.split("-> ")[1].split(" ")[0])
    stopped = [line for line in session.extra_launches if line.startswith("world size 2 (tuned): stopped at 3 of")]
    assert stopped and len(session.series["tuned", 2]) == 3 < target, session.extra_launches
    assert len(session.series["tuned", 1]) >= 1                   # the later world size kept its launch
    assert launcher.now <= 100 + 40                               # at most one launch past the budget


def test_an_undecided_verdict_gets_more_launches_and_then_is_decided():
    baseline_launches = tuple((0.100, 0.100, 0.100, 0.100) for _ in range(10))
    base = {("tuned", 1): Series("tuned", 1, 8, baseline_launches)}
    against = Baseline({"scaling": {"analysis": {}}}, "base.json", base)
    noisy = [0.090, 0.125, 0.100]                                 # three launches that cannot tell 0 % from +10 %
    launcher = FakeLauncher({("tuned", 1): constant(3.0)},
                            {(CURRENT, ("tuned", 1)): lambda n: noisy[n] if n < 3 else 0.100})
    opts = settings(world_sizes="1", rounds=3, scaling_max_rounds=24, scaling_budget_s=1000)
    session, lines = session_of(opts, launcher, against)
    assert session.undecided(("tuned", 1)) == ""                 # nothing measured yet: nothing to extend
    launches = session.measure(("tuned", 1))
    extended = [line for line in session.extra_launches if "launches 3 -> 6" in line]
    assert extended and "inconclusive" in extended[0], session.extra_launches
    assert len(launches) == len(session.series["tuned", 1]) == 6     # one look later it was decided: no more
    assert session.undecided(("tuned", 1)) == ""
    verdicts = against.judge({("tuned", 1): session.current_series(("tuned", 1))}, session.gate).verdicts
    assert [v.verdict for v in verdicts] == ["pass"]


def test_an_ab_session_runs_ref_and_the_working_tree_in_balanced_blocks_of_a_drawn_order():
    code = RefCode("main", "a" * 40, Path("/nowhere"))
    launcher = FakeLauncher({("tuned", 1): constant(2.0)}, {(CURRENT, ("tuned", 1)): constant(0.1)})
    opts = settings(world_sizes="1", scaling_ab="main", scaling_ab_rounds=6, warmup_launches=1, spawn="fresh")
    ab = ABSession(code, seed=3)
    session, _ = session_of(opts, launcher, ab)
    timed = []
    session.measure(("tuned", 1), timed=lambda run: timed.append(1) or run())
    sides = [side for side, *_ in launcher.calls]
    assert sides[:2] == [CURRENT, REF]                           # the warm-up of each side first
    blocks = [tuple(sides[i:i + 2]) for i in range(2, len(sides), 2)]
    assert len(blocks) >= 6 and all(sorted(block) == [CURRENT, REF] for block in blocks)
    assert all(first == second[::-1] for first, second in zip(blocks[::2], blocks[1::2]))   # ABBA or BAAB
    assert len(timed) == len(blocks)                              # only the working tree's launches are rounds
    assert ab.orders[("tuned", 1)] == [side for block in blocks for side in block]
    drawn = set()
    for seed in range(8):
        other = FakeLauncher({("tuned", 1): constant(2.0)}, {(CURRENT, ("tuned", 1)): constant(0.1)})
        session_of(opts, other, ABSession(code, seed=seed))[0].measure(("tuned", 1))
        drawn.add(tuple(side for side, *_ in other.calls[2:6]))
    assert len(drawn) == 2                                        # REF first in some sessions, last in others


def test_an_interrupt_between_world_sizes_keeps_the_first_and_says_what_it_stopped():
    launcher = FakeLauncher({("tuned", 1): constant(4.0), ("tuned", 2): constant(6.0)},
                            {(CURRENT, ("tuned", 1)): constant(0.2), (CURRENT, ("tuned", 2)): constant(0.12)},
                            fail_at=(CURRENT, ("tuned", 1)))
    opts = settings(rounds=2)
    session, _ = session_of(opts, launcher)
    session.measure(("tuned", 2))
    assert session.now == "world size 2 (tuned), between launches"
    with pytest.raises(KeyboardInterrupt):
        session.measure(("tuned", 1))
    session.interrupt("SIGTERM")
    assert len(session.series["tuned", 2]) == 2                   # what was measured stays
    assert session.partial() == ["interrupted (SIGTERM) during world size 1 (tuned), a warm-up launch",
                                 "no finished launch at world size 1 (tuned)"]


def test_a_failed_launch_is_kept_noted_and_raised():
    class Failing(FakeLauncher):
        def launch(self, *args, **kwargs):
            launch, _ = super().launch(*args, **kwargs)
            launch.error = "rank 1 exited with code 9"
            return launch, "rank 1 exited with code 9\nits log: ..."

    launcher = Failing({("tuned", 1): constant(1.0)}, {(CURRENT, ("tuned", 1)): constant(0.1)})
    session, _ = session_of(settings(world_sizes="1", rounds=2, warmup_launches=0), launcher)
    with pytest.raises(LaunchFailed, match="rank 1 exited with code 9"):
        session.measure(("tuned", 1))
    assert len(session.series["tuned", 1]) == 1 and not session.series["tuned", 1][0].finished
    assert session.failures == ["world size 1 (tuned): launch 1 failed: rank 1 exited with code 9"]


@pytest.mark.parametrize("given, message", [
    ({"global_batch": 6, "world_sizes": "1,4"}, "--global-batch 6 does not divide evenly across world size 4"),
    ({"scaling_baseline": "/nowhere/base.json"}, "baseline file /nowhere/base.json does not exist"),
])
def test_bad_input_is_refused_before_any_launch_naming_it(given, message, monkeypatch):
    def no_launch(*args, **kwargs):
        raise AssertionError("launched")

    monkeypatch.setattr("lanemodel.session.runs.run_one_launch", no_launch)
    with pytest.raises(SessionError, match=message.replace(".", r"\.")):
        open_session(settings(**given))


def test_every_key_runs_once_in_the_order_of_the_plan():
    opts = settings(world_sizes="1,2,4", threads="tuned,naive", scaling_session_budget_s=50)
    assert measurement_order(opts) == [(p, ws) for p, ws in itertools.product(("tuned", "naive"), (4, 2, 1))]
    assert measurement_order(settings(world_sizes="1,2,4", rounds=2)) == [("tuned", 1), ("tuned", 2), ("tuned", 4)]


def test_a_world_size_that_would_not_fit_in_memory_is_not_run_and_the_plan_spends_its_budget_elsewhere():
    from lanemodel.engine.cgroup import Memory
    from lanemodel.session.memory import MemoryPlan

    walls = {("tuned", 1): constant(4.0), ("tuned", 2): constant(5.0), ("tuned", 8): constant(20.0)}
    medians = {(CURRENT, key): constant(0.1) for key in walls}
    opts = settings(world_sizes="1,2,8", scaling_session_budget_s=60)
    launcher = FakeLauncher(walls, medians)
    memory = MemoryPlan(lambda: Memory(3 * 2**30, "3.0 GiB: a test cgroup"))
    session, lines = session_of(opts, launcher, memory=memory)
    with pytest.raises(NotRun, match=r"not run: needs about 5\.6 GiB, 3\.0 GiB available \(3\.0 GiB: a test cgroup"):
        session.measure(("tuned", 8))                  # the warm-up at 1 process measured a rank: 1000 MB, 400 shared
    assert [call[2] for call in launcher.calls] == [1]  # only the warm-up ran
    for key in (("tuned", 2), ("tuned", 1)):
        session.measure(key)
    assert "tuned_ws8" not in " ".join(name for *_, name in launcher.calls)
    assert len(session.series["tuned", 2]) + len(session.series["tuned", 1]) > 2    # the budget went to them
    assert session.partial() == ["world size 8 (tuned) not run: " + session.not_run["tuned", 8]]
    assert any("world size 8 (tuned): not run: needs about 5.6 GiB" in line for line in lines)


def test_a_sweep_that_nothing_of_fits_in_memory_is_refused_before_any_launch(monkeypatch):
    from lanemodel.engine import cgroup

    monkeypatch.setattr(cgroup, "usable_memory", lambda: cgroup.Memory(2**30, "1.0 GiB: a small pod"))
    monkeypatch.setattr("lanemodel.session.runs.run_one_launch", lambda *a, **k: pytest.fail("launched"))
    with pytest.raises(SessionError, match=r"--world-sizes 8,16: nothing fits in memory: world size 8 needs about "
                                           r"4\.7 GiB, 1\.0 GiB available \(1\.0 GiB: a small pod"):
        open_session(settings(world_sizes="8,16"))
