"""The suite's fixtures: options, data, launches (and REF's, probes, traces), and more launches where the gate
cannot decide yet. Loaded as a plugin beside ``benchmarks.plugin`` (root conftest.py)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from benchmarks import suite
from benchmarks.abtest import CURRENT, REF
from benchmarks.planning import SessionPlanner
from benchmarks.state import state_of
from lanemodel.analysis.gate import metrics_gated, more_launches_needed
from lanemodel.analysis.launchplan import LaunchPlan
from lanemodel.analysis.outcome import SuiteOutcome
from lanemodel.engine.progress import Progress
from lanemodel.records import Launch, launch_name, warmup_name
from lanemodel.settings import SweepSettings, look_sizes


@pytest.fixture(scope="session")
def suite_options(request: pytest.FixtureRequest) -> SweepSettings:
    return state_of(request.config).options


@pytest.fixture(scope="session")
def lane_data(suite_options: SweepSettings) -> Path:
    """The synthetic TuSimple-format data set the benchmarks train on, made once and reused."""
    return suite.prepare_results_dir(suite_options)


@pytest.fixture(scope="session")
def perf_runner(suite_options: SweepSettings, lane_data: Path):
    from benchmarks.performance import PerformanceRunner

    return PerformanceRunner(suite_options, lane_data)


@pytest.fixture(scope="session")
def run_launch(request: pytest.FixtureRequest, suite_options: SweepSettings, lane_data: Path):
    """Callable(world_size, policy, warmup=False, side=CURRENT, steps=None) -> one launch, kept for the session's
    analysis unless it is a warm-up launch (run, saved as ..._warmup, never in the statistics); a failed launch
    fails the test. ``side`` REF runs REF's code (--scaling-ab); its metrics go to <results>/ab_ref. ``steps``
    shortens a warm-up launch (the session plan's cost probe)."""
    state = state_of(request.config)

    def launch(world_size: int, policy: str, warmup: bool = False, side: str = CURRENT,
               steps: int | None = None) -> Launch:
        key = (policy, world_size)
        ref = side == REF and state.ab is not None
        launches = (state.ab.series if ref else state.series).setdefault(key, [])
        index = len(launches)
        name = launch_name(policy, world_size, index) if not warmup else warmup_name(policy, world_size)
        plan = state.planner.plan if state.planner is not None else None
        planned = plan.launches.get(key, suite_options.rounds) if plan is not None else suite_options.rounds
        cfg = suite.train_config(suite_options, lane_data, **({"steps": steps} if steps else {}))
        progress = state.progress or Progress(suite_options.steps, suite_options.rounds)
        state.now = f"world size {world_size} ({policy}), " + ("a warm-up launch" if warmup else f"launch {index + 1}")
        state.session_clock.start()
        started = time.perf_counter()
        with progress.launch(world_size, index, max(planned, index + 1), warmup, "REF " if ref else "") as on_step:
            result, error = suite.run_one_launch(suite_options, cfg, policy, world_size, name, on_step=on_step,
                                                 code=state.ab.code if ref else None, nodes=state.nodes)
        state.now = f"world size {world_size} ({policy}), between launches"
        if state.ab is not None and not warmup:
            state.ab.record(key, side, result, time.perf_counter() - started)
        if not warmup and not ref:
            launches.append(result)
        if error:
            state.failures.append(f"world size {world_size} ({policy}): {'warm-up ' if warmup else ''}launch "
                                  f"{index + 1} failed: {error.splitlines()[0]}")
            pytest.fail(error, pytrace=False)
        return result

    return launch


@pytest.fixture(scope="session")
def launch_plan(request: pytest.FixtureRequest, suite_options: SweepSettings, run_launch) -> SessionPlanner | None:
    """With a session budget (--rounds auto): the session's warm-up and its first plan, printed before the
    first measured launch (``benchmarks.planning``). None without one: the tests then run their own warm-ups
    and exactly --rounds."""
    from lanemodel.engine.threads import available_cpus

    state = state_of(request.config)
    if not suite_options.scaling_session_budget_s:
        return None
    order = [(item.callspec.params["thread_policy"], item.callspec.params["world_size"])
             for item in request.session.items if item.get_closest_marker("scaling_benchmark")]
    state.planner = SessionPlanner(suite_options, order, state.session_clock.elapsed,
                                   lambda key: len(state.series.get(key, [])), state.progress,
                                   len(available_cpus()))
    state.planner.warm_up(run_launch)
    return state.planner


@pytest.fixture
def scaling_outcome(request: pytest.FixtureRequest) -> SuiteOutcome | None:
    """What the session concluded (curve, report, gate), once every benchmark and probe has run: the gate
    items' input; None when no launch finished."""
    return state_of(request.config).finish()


@pytest.fixture
def probe_causes(request: pytest.FixtureRequest, suite_options: SweepSettings, lane_data: Path):
    """Callable(world_size, policy): the batch-splitting probe (one rank alone at this world size's per-rank
    batch and thread budget) and the all-reduce microbenchmark (this world size's ranks, plans and transport,
    the gradient's buckets), unless probes are off or this is an A/B run; a failed probe fails the test."""
    from lanemodel.engine.allreduce_bench import AllreduceBenchError

    state = state_of(request.config)

    def probe(world_size: int, policy: str) -> None:
        if not suite_options.probes or suite_options.scaling_ab or world_size == 1:
            return
        cfg = suite.train_config(suite_options, lane_data)
        progress = state.progress or Progress(suite_options.steps, 1)
        state.now = f"world size {world_size} ({policy}), the cause probes"
        with progress.launch(world_size, 0, 1, side="rank-alone probe ") as on_step:
            launch, error = suite.run_rank_alone(suite_options, cfg, policy, world_size, on_step=on_step)
        state.rank_alone.setdefault((policy, world_size), []).append(launch)
        if error:
            pytest.fail(error, pytrace=False)
        trained = [found for found in state.series.get((policy, world_size), []) if found.env.get("gradient_bytes")]
        if not trained:
            return
        progress.note(f"world size {world_size}: all-reduce microbenchmark")
        try:
            state.allreduce[(policy, world_size)] = suite.run_allreduce_bench(
                suite_options, cfg, policy, world_size, trained[-1].env["gradient_bytes"], nodes=state.nodes)
        except AllreduceBenchError as exc:
            pytest.fail(str(exc), pytrace=False)

    return probe


@pytest.fixture
def profile_launch(request: pytest.FixtureRequest, suite_options: SweepSettings, lane_data: Path):
    """Callable(world_size, policy): with --profile-steps K, one more launch (outside the statistics) that
    writes a torch.profiler trace per rank; a failed one fails the test."""
    state = state_of(request.config)

    def profile(world_size: int, policy: str) -> None:
        if not suite_options.profile_steps:
            return
        progress = state.progress or Progress(suite_options.steps, 1)
        with progress.launch(world_size, 0, 1, side="profiled ") as on_step:
            traces, error = suite.run_profiled(suite_options, suite.train_config(suite_options, lane_data), policy,
                                               world_size, on_step=on_step, nodes=state.nodes)
        state.traces.update(traces)
        if error:
            pytest.fail(error, pytrace=False)

    return profile


@pytest.fixture
def measure_bandwidth(request: pytest.FixtureRequest, suite_options: SweepSettings):
    """Callable() -> the memory-bandwidth curve, kept for the report (results/probes/bandwidth.json)."""
    import json

    from lanemodel.engine.bandwidth import bandwidth_curve
    from lanemodel.engine.threads import available_cpus

    state = state_of(request.config)

    def measure() -> dict:
        state.now = "the memory-bandwidth probe"
        cpus = available_cpus()
        state.bandwidth = bandwidth_curve(suite.bandwidth_counts(suite_options.world_sizes, len(cpus)), cpus)
        out = Path(suite_options.results_dir) / suite.PROBE_DIR
        out.mkdir(parents=True, exist_ok=True)
        (out / "bandwidth.json").write_text(json.dumps(state.bandwidth, indent=1))
        return state.bandwidth

    return measure


def projected_seconds(launches: list[Launch], count: int) -> float:
    """About how long ``count`` more launches like ``launches`` take (their mean wall time)."""
    walls = [launch.wall_time for launch in launches if launch.wall_time is not None]
    return count * sum(walls) / len(walls) if walls else 0.0


@pytest.fixture
def extend_launches(request: pytest.FixtureRequest, suite_options: SweepSettings, run_launch, ab_block,
                    launch_plan: SessionPlanner | None):
    """Callable(benchmark, world_size, policy) -> the launches after the first --rounds, each with its reason.

    First the session plan's (--rounds auto): up to the planned count, while one more launch, projected from
    this world size's so far, still leaves the later world sizes' minimum launches and the probes within the
    session budget. Then, while the gate cannot decide (or, with --scaling-precise and nothing to compare
    with, until the median is known to about 1 %): launch counts follow ``look_sizes`` (rounds, then doubling
    up to --scaling-max-rounds; the gate's alpha is divided by the number of those looks), and
    --scaling-budget-s caps their wall time: an extension that would overrun it does not start. Each extra
    launch is timed into the benchmark's statistics like a round.
    """
    state = state_of(request.config)

    def extend(benchmark, world_size: int, policy: str) -> list[Launch]:
        key = (policy, world_size)
        extra: list[Launch] = []
        before, after = ab_block(world_size, policy)

        def one_more() -> float:
            block_started = time.perf_counter()
            before()
            started = time.perf_counter()
            extra.append(run_launch(world_size, policy))
            benchmark.stats.update(time.perf_counter() - started)   # one more round of this benchmark
            after()
            return time.perf_counter() - block_started

        if launch_plan is not None and state.series.get(key):
            launch_plan.first_launch(key, state.series[key][0])
            if launch_plan.plan is not None:
                _run_planned(launch_plan.plan, key, state, one_more)
        for target in look_sizes(suite_options.rounds, suite_options.scaling_max_rounds)[1:]:
            have = len(state.series[key])
            if target <= have:
                continue
            current = {k: s for k in state.planned if (s := state.current_series(*k)) is not None}
            compared, paired, gated = state.compared_with()
            reason = more_launches_needed(key, current, compared, state.gate, metrics_gated(gated), paired,
                                          precise=bool(suite_options.scaling_precise))
            if not reason:
                break
            cost = projected_seconds(state.series[key], target - have) + (
                projected_seconds(state.ab.series.get(key, []), target - have) if state.ab else 0.0)
            left = suite_options.scaling_budget_s - state.extra_seconds
            if cost > left:        # the budget is a cap: an extension that would overrun it does not start
                state.extra_launches.append(f"world size {world_size} ({policy}): {reason}; no extra launches, "
                                            f"{target - have} more would take about {cost:.0f} s and "
                                            f"{max(left, 0):.0f} s of the {suite_options.scaling_budget_s:g} s "
                                            f"budget are left")
                break
            _announce(state, f"world size {world_size} ({policy}): {reason}; launches {have} -> {target}",
                      (target - have) * (2 if state.ab else 1))
            for _ in range(target - have):
                state.extra_seconds += one_more()
        return extra

    return extend


def _run_planned(plan: LaunchPlan, key: tuple[str, int], state, one_more) -> None:
    """The plan's launches past the first ones, while the session budget still holds the rest of the plan's
    minimum: a world size that ran slower than its cost probe said gives up launches, not the later ones."""
    policy, world_size = key
    have, target = len(state.series[key]), plan.launches[key]
    if target <= have:
        return
    why = "; ".join(plan.reasons[key]) or "the budget leaves room"
    _announce(state, f"world size {world_size} ({policy}): launches {have} -> {target} by the session plan ({why})",
              0)
    while have < target:
        cost = projected_seconds(state.series[key], 1)
        reserved = plan.committed_after(key)
        if state.session_clock.elapsed() + cost + reserved > plan.budget_s:
            _announce(state, f"world size {world_size} ({policy}): stopped at {have} of {target} planned launches: "
                             f"one more (about {cost:.0f} s) would leave less than the {reserved:.0f} s the later "
                             f"world sizes and the probes need of the {plan.budget_s:g} s session budget",
                      have - target)
            return
        one_more()
        have += 1


def _announce(state, text: str, more_launches: int) -> None:
    """Say why launches are added (or dropped) and keep the progress count right."""
    state.extra_launches.append(text)
    if state.progress is not None:
        state.progress.total_launches += more_launches
        state.progress.note(text)


@pytest.fixture
def ab_block(request: pytest.FixtureRequest, run_launch):
    """Callable(world_size, policy) -> (before, after) around each working-tree launch: with --scaling-ab one
    of them runs a REF launch (the block's order drawn at random, in balanced pairs); else both do nothing."""
    state = state_of(request.config)

    def around(world_size: int, policy: str):
        if state.ab is None:
            return (lambda *a, **k: None), (lambda *a, **k: None)
        return state.ab.block((policy, world_size), lambda: run_launch(world_size, policy, side=REF))

    return around
