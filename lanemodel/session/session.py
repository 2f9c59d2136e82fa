"""One measurement session: which launches run, in what order, why, and what they concluded.

``ScalingSession`` owns the series per (thread policy, world size) and every decision about them: the session
plan within the budget (``session.planning``), warm-up launches, the A/B blocks (REF and the working tree in a
drawn, balanced order), adaptive launches while a gate verdict is undecided (within --scaling-budget-s), the
cause probes, and the conclusion. It launches through a launcher (``session.runs.EngineLauncher``, or a fake
in tests) and says what it does through progress lines. It knows nothing of pytest: the suite and
``python -m lanemodel sweep`` are shells that drive it.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Protocol

from lanemodel.analysis.claims import probes_from
from lanemodel.analysis.gate import BaselineError, GateResult, GateSettings, Series, metrics_gated, more_launches_needed
from lanemodel.analysis.outcome import Comparison, SuiteOutcome, summarise_session
from lanemodel.engine.cgroup import resident_bytes
from lanemodel.engine.progress import Progress
from lanemodel.records import Launch, LaunchSeries, RunConfig, launch_name, warmup_name
from lanemodel.session.abtest import CURRENT, REF, ABSession
from lanemodel.session.errors import LaunchFailed, NotRun
from lanemodel.session.memory import MemoryPlan
from lanemodel.session.planning import SessionPlanner
from lanemodel.settings import SweepSettings, look_sizes

Key = tuple[str, int]
Timed = Callable[[Callable[[], Launch]], Launch]     # runs one measured launch, timing it as a round


class Launcher(Protocol):
    """What the session launches through (``session.runs.EngineLauncher``)."""

    def launch(self, policy: str, world_size: int, name: str, *, steps: int | None = None, code=None,
               on_step=None) -> tuple[Launch, str | None]: ...

    def rank_alone(self, policy: str, world_size: int, on_step=None) -> tuple[Launch, str | None]: ...

    def allreduce(self, policy: str, world_size: int, gradient_bytes: int) -> dict: ...

    def profiled(self, policy: str, world_size: int, on_step=None) -> tuple[dict[str, str], str | None]: ...

    def bandwidth(self) -> dict: ...


class Against(Protocol):
    """What the session is gated against (``session.against``: a baseline, the history, REF)."""

    name: str

    def judge(self, current: dict[Key, Series], gate: GateSettings) -> GateResult: ...

    def compared_with(self, planned: set[Key]) -> tuple[dict[Key, Series], bool, set[Key]]: ...

    def comparison(self) -> Comparison: ...


def measurement_order(opts: SweepSettings, keys: list[Key] | None = None) -> list[Key]:
    """The (policy, world size) keys in the order the session measures them: a planned session takes each
    policy's world sizes from the largest down (the costliest first, the cheap ones take what is left)."""
    if keys is None:
        keys = [(policy, ws) for policy in opts.launch.threads for ws in opts.launch.world_sizes]
    if not opts.plan.session_budget_s:
        return list(keys)
    return sorted(keys, key=lambda key: (opts.launch.threads.index(key[0]), -key[1]))


def projected_seconds(launches: list[Launch], count: int) -> float:
    """About how long ``count`` more launches like ``launches`` take (their mean wall time)."""
    walls = [launch.wall_time for launch in launches if launch.wall_time is not None]
    return count * sum(walls) / len(walls) if walls else 0.0


def run_config_once(opts: SweepSettings) -> Callable[[], RunConfig]:
    """This run's RunConfig, built on the first call (it reads the machine and imports torch) and kept."""
    from functools import cache

    from lanemodel.session.runs import run_config

    return cache(lambda: run_config(opts))


class SessionClock:
    """Seconds since the session's first launch: what --scaling-session-budget-s counts."""

    def __init__(self, now: Callable[[], float] = time.perf_counter):
        self.now = now
        self.started: float | None = None

    def start(self) -> None:
        if self.started is None:
            self.started = self.now()

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self.now() - self.started


class ScalingSession:
    """The measurements of one session and the decisions that made them; ``conclude()`` is its result."""

    def __init__(self, opts: SweepSettings, gate: GateSettings, launcher: Launcher, *, order: list[Key],
                 against: Against | None = None, cores: int = 1, write: Callable[[str], None] | None = None,
                 live: bool | None = None, clock: Callable[[], float] = time.perf_counter,
                 series_name: Callable[[Key], str] = lambda key: f"{key[0]}-ws{key[1]}",
                 memory: MemoryPlan | None = None, config: Callable[[], RunConfig] | None = None):
        self.opts, self.gate, self.launcher, self.against = opts, gate, launcher, against
        self.config = config or run_config_once(opts)   # this run's set-up, built when first needed
        self.memory = memory                          # what the ranks hold; None: memory is not planned
        self.order = order                            # the keys this session measures, in order
        self.planned = {(policy, ws) for policy in opts.launch.threads for ws in opts.launch.world_sizes}
        self.series_name = series_name                # a series' name in the gate's verdicts
        self.series: LaunchSeries = {}
        self.extra_launches: list[str] = []           # launches added or dropped, and why
        self.extra_seconds = 0.0                      # wall time of the gate's extra launches so far
        self.rank_alone: LaunchSeries = {}            # the batch-splitting probe, by the world size it stands for
        self.bandwidth: dict = {}                     # the memory-bandwidth probe
        self.allreduce: dict[Key, dict] = {}          # the all-reduce microbenchmark per key
        self.traces: dict[str, str] = {}              # --profile-steps: torch.profiler trace per rank
        self.failures: list[str] = []                 # launches that failed, one line each
        self.not_run: dict[Key, str] = {}             # world sizes not launched, and why
        self.rss_beside_ranks = (0, 0)                # the session's (resident, private) bytes as launches ended
        self.now = ""                                 # what the session is doing, for an interruption's note
        self.interrupted = ""                         # what an interruption stopped
        self.cleanup = ExitStack()                    # REF's worktree, the emulated nodes: closed by close()
        self.clock = SessionClock(clock)
        sides = 2 if self.ab else 1                   # with --scaling-ab every launch has a REF twin
        launches = sides * len(self.planned) * (opts.plan.rounds + opts.plan.warmup_launches)
        self.progress = Progress(opts.workload.steps, launches, write, live=live)
        self.planner = SessionPlanner(opts, list(order), self.clock.elapsed, lambda key: len(self.series.get(key, [])),
                                      self.progress, cores) if opts.plan.session_budget_s else None
        self._warmed_up = False
        self._outcome: SuiteOutcome | None = None

    @property
    def ab(self) -> ABSession | None:
        return self.against if isinstance(self.against, ABSession) else None

    @property
    def baseline_name(self) -> str:
        return self.against.name if self.against is not None else ""

    def close(self) -> None:
        self.cleanup.close()

    # -- launches ---------------------------------------------------------------------------------------------

    def measure(self, key: Key, timed: Timed | None = None) -> list[Launch]:
        """Every measured launch of ``key``: its warm-ups, --rounds blocks, then the plan's launches and the
        gate's adaptive ones, each said with its reason. ``timed`` runs each measured working-tree launch (the
        suite times it as a benchmark round). Raises LaunchFailed when a launch fails (what it measured is
        kept), NotRun when ``key``'s ranks would not fit in memory."""
        timed = timed or (lambda run: run())
        if self.planner is not None and not self._warmed_up:
            self._warmed_up = True
            self.planner.warm_up(lambda warm_key, steps: self._launch(warm_key, warmup=True, steps=steps))
        self._check_memory(key)
        for _ in range(self.opts.plan.warmup_launches - (self.planner is not None)):
            self._launch(key, warmup=True)
            if self.ab:
                self._launch(key, warmup=True, side=REF)
        launches = [self._block(key, timed) for _ in range(self.opts.plan.rounds)]
        launches += self._extend(key, timed)
        return launches

    def _check_memory(self, key: Key) -> None:
        """Raise NotRun when ``key``'s ranks would not fit in memory: said, kept for the report, and left out
        of the plan, whose budget goes to the other world sizes."""
        reason = self.memory.refusal(key[1]) if self.memory is not None else ""
        if not reason:
            return
        self.not_run[key] = reason
        policy, world_size = key
        self.extra_launches.append(f"world size {world_size} ({policy}): not run: {reason}")
        self.progress.total_launches -= self.opts.plan.rounds + self.opts.plan.warmup_launches
        self.progress.note(f"world size {world_size} ({policy}): not run: {reason}")
        if self.planner is not None:
            self.planner.drop(key)
        raise NotRun(f"not run: {reason}")

    def _launch(self, key: Key, warmup: bool = False, side: str = CURRENT, steps: int | None = None) -> Launch:
        """One launch, kept for the analysis unless it is a warm-up (saved as ..._warmup, never in the
        statistics); REF's go to REF's series. A failed one is noted and raises LaunchFailed."""
        policy, world_size = key
        ref = side == REF and self.ab is not None
        launches = (self.ab.series if ref else self.series).setdefault(key, [])
        index = len(launches)
        name = warmup_name(policy, world_size) if warmup else launch_name(policy, world_size, index)
        plan = self.planner.plan if self.planner is not None else None
        planned = plan.launches.get(key, self.opts.plan.rounds) if plan is not None else self.opts.plan.rounds
        self.now = f"world size {world_size} ({policy}), " + ("a warm-up launch" if warmup else f"launch {index + 1}")
        self.clock.start()
        started = self.clock.now()
        with self.progress.launch(world_size, index, max(planned, index + 1), warmup, "REF " if ref else "") as on_step:
            result, error = self.launcher.launch(policy, world_size, name, steps=steps, on_step=on_step,
                                                 code=self.ab.code if ref else None)
        self.now = f"world size {world_size} ({policy}), between launches"
        self.rss_beside_ranks = max(self.rss_beside_ranks, resident_bytes())
        if self.memory is not None:
            self.memory.observe(result)
        if self.ab is not None and not warmup:
            self.ab.record(key, side, result, self.clock.now() - started)
        if not warmup and not ref:
            launches.append(result)
        if error:
            self.failures.append(f"world size {world_size} ({policy}): {'warm-up ' if warmup else ''}launch "
                                 f"{index + 1} failed: {error.splitlines()[0]}")
            raise LaunchFailed(error)
        return result

    def _block(self, key: Key, timed: Timed) -> Launch:
        """One measured launch of the working tree; with --scaling-ab, a block with REF's in the drawn order."""
        run_current = lambda: timed(lambda: self._launch(key))
        if self.ab is None:
            return run_current()
        return self.ab.block(key, lambda: self._launch(key, side=REF), run_current)

    def _extend(self, key: Key, timed: Timed) -> list[Launch]:
        """The launches after the first --rounds, each with its reason.

        First the session plan's (--rounds auto): up to the planned count, while one more launch, projected
        from this world size's so far, still leaves the later world sizes' minimum and the probes within the
        session budget. Then, while the gate cannot decide (or, with --scaling-precise and nothing to compare
        with, until the median is known to about 1 %): launch counts follow ``look_sizes`` (rounds, then
        doubling up to --scaling-max-rounds; the gate's alpha is divided by the number of those looks), and
        --scaling-budget-s caps their wall time: an extension that would overrun it does not start.
        """
        extra: list[Launch] = []

        def one_more() -> float:
            started = self.clock.now()
            extra.append(self._block(key, timed))
            return self.clock.now() - started

        if self.planner is not None and self.series.get(key):
            self.planner.first_launch(key, self.series[key][0])
            if self.planner.plan is not None:
                self._run_planned(key, one_more)
        for target in look_sizes(self.opts.plan.rounds, self.opts.plan.max_rounds)[1:]:
            have = len(self.series[key])
            if target <= have:
                continue
            reason = self.undecided(key)
            if not reason:
                break
            cost = projected_seconds(self.series[key], target - have) + (
                projected_seconds(self.ab.series.get(key, []), target - have) if self.ab else 0.0)
            left = self.opts.plan.extra_budget_s - self.extra_seconds
            policy, world_size = key
            if cost > left:        # the budget is a cap: an extension that would overrun it does not start
                self.extra_launches.append(f"world size {world_size} ({policy}): {reason}; no extra launches, "
                                           f"{target - have} more would take about {cost:.0f} s and "
                                           f"{max(left, 0):.0f} s of the {self.opts.plan.extra_budget_s:g} s "
                                           f"budget are left")
                break
            self._announce(f"world size {world_size} ({policy}): {reason}; launches {have} -> {target}",
                           (target - have) * (2 if self.ab else 1))
            for _ in range(target - have):
                self.extra_seconds += one_more()
        return extra

    def undecided(self, key: Key) -> str:
        """Why ``key``'s measurements cannot be concluded yet (a gate verdict undecided, or an imprecise
        baseline-quality median); empty when they can."""
        current = {k: s for k in self.planned if (s := self.current_series(k)) is not None}
        compared, paired, gated = self.against.compared_with(self.planned) if self.against else ({}, False, set())
        return more_launches_needed(key, current, compared, self.gate, metrics_gated(gated), paired,
                                    precise=bool(self.opts.plan.precise))

    def _run_planned(self, key: Key, one_more: Callable[[], float]) -> None:
        """The plan's launches past the first ones, while the session budget still holds the rest of the plan's
        minimum: a world size that ran slower than its cost probe said gives up launches, not the later ones."""
        plan = self.planner.plan
        policy, world_size = key
        have, target = len(self.series[key]), plan.launches[key]
        if target <= have:
            return
        why = "; ".join(plan.reasons[key]) or "the budget leaves room"
        self._announce(f"world size {world_size} ({policy}): launches {have} -> {target} by the session plan "
                       f"({why})", 0)
        while have < target:
            cost = projected_seconds(self.series[key], 1)
            reserved = plan.committed_after(key)
            if self.clock.elapsed() + cost + reserved > plan.budget_s:
                self._announce(f"world size {world_size} ({policy}): stopped at {have} of {target} planned "
                               f"launches: one more (about {cost:.0f} s) would leave less than the {reserved:.0f} s "
                               f"the later world sizes and the probes need of the {plan.budget_s:g} s session "
                               f"budget", have - target)
                return
            one_more()
            have += 1

    def _announce(self, text: str, more_launches: int) -> None:
        """Say why launches are added (or dropped) and keep the progress count right."""
        self.extra_launches.append(text)
        self.progress.total_launches += more_launches
        self.progress.note(text)

    # -- probes -----------------------------------------------------------------------------------------------

    def probe(self, key: Key) -> None:
        """The batch-splitting probe (one rank alone at this world size's per-rank batch and thread budget) and
        the all-reduce microbenchmark (this world size's ranks, plans and transport, the gradient's buckets),
        unless probes are off or this is an A/B run. Raises LaunchFailed."""
        from lanemodel.engine.allreduce_bench import AllreduceBenchError

        policy, world_size = key
        if not self.opts.plan.probes or self.opts.ab.ref or world_size == 1:
            return
        self.now = f"world size {world_size} ({policy}), the cause probes"
        with self.progress.launch(world_size, 0, 1, side="rank-alone probe ") as on_step:
            launch, error = self.launcher.rank_alone(policy, world_size, on_step=on_step)
        self.rank_alone.setdefault(key, []).append(launch)
        if error:
            raise LaunchFailed(error)
        trained = [found for found in self.series.get(key, []) if found.env.get("gradient_bytes")]
        if not trained:
            return
        self.progress.note(f"world size {world_size}: all-reduce microbenchmark")
        try:
            self.allreduce[key] = self.launcher.allreduce(policy, world_size, trained[-1].env["gradient_bytes"])
        except AllreduceBenchError as exc:
            raise LaunchFailed(str(exc)) from None

    def profile(self, key: Key) -> None:
        """With --profile-steps K: one more launch (outside the statistics) that writes a torch.profiler trace
        per rank. Raises LaunchFailed."""
        if not self.opts.plan.profile_steps:
            return
        policy, world_size = key
        with self.progress.launch(world_size, 0, 1, side="profiled ") as on_step:
            traces, error = self.launcher.profiled(policy, world_size, on_step=on_step)
        self.traces.update(traces)
        if error:
            raise LaunchFailed(error)

    @property
    def probes_bandwidth(self) -> bool:
        """Whether this session measures the memory-bandwidth curve (probes on, not an A/B run)."""
        return bool(self.opts.plan.probes and not self.opts.ab.ref)

    def measure_bandwidth(self) -> dict:
        """The memory-bandwidth curve by 1..cores concurrent pinned processes, kept for the report."""
        self.now = "the memory-bandwidth probe"
        self.bandwidth = self.launcher.bandwidth()
        return self.bandwidth

    # -- the result -------------------------------------------------------------------------------------------

    def interrupt(self, cause: str) -> None:
        """Ctrl-C or SIGTERM: remember what it stopped, for the report and the terminal."""
        self.interrupted = f"interrupted ({cause})" + (f" during {self.now}" if self.now else "")

    def current_series(self, key: Key) -> Series | None:
        """``key``'s finished launches in the gate's form; None before one finished."""
        launches = [launch for launch in self.series.get(key, []) if launch.finished and launch.kept_step_times]
        if not launches:
            return None
        return Series(key[0], key[1], launches[0].global_batch_size,
                      tuple(launch.kept_step_times for launch in launches), self.series_name(key))

    def plan_json(self) -> dict | None:
        plan = self.planner.plan if self.planner is not None else None
        return None if plan is None else {**plan.as_json(), "session_s": round(self.clock.elapsed(), 1)}

    def partial(self) -> list[str]:
        """Why this session measured less than it set out to: an interruption, failed launches, world sizes
        left without a finished launch. Empty for a complete session."""
        notes = ([self.interrupted] if self.interrupted else []) + self.failures + [
            f"world size {ws} ({policy}) not run: {reason}" for (policy, ws), reason in sorted(self.not_run.items())]
        measured = {key for key, launches in self.series.items() if any(launch.finished for launch in launches)}
        missing = sorted(self.planned - measured - set(self.not_run), key=lambda key: (key[0], key[1]))
        if missing and notes:       # without an interruption or a failure, a missing world size was not selected
            notes.append("no finished launch at " + ", ".join(f"world size {ws} ({policy})" for policy, ws in missing))
        return notes

    def conclude(self) -> SuiteOutcome | None:
        """Analysis, gate, plots and REPORT.md from everything measured, once; None when nothing was."""
        from lanemodel.session.conclude import write_outcome
        if self._outcome is not None or not self.series:
            return self._outcome
        result = None
        if self.against is not None:
            current = {key: s for key in self.series if (s := self.current_series(key)) is not None}
            try:
                result = self.against.judge(current, self.gate)
            except BaselineError as exc:       # nothing shared: the run is not gated, and says so
                result = GateResult([], [], refused=str(exc))
        outcome = summarise_session(self.series, self.config().as_json(), result, self.gate, self.baseline_name,
                                    self.extra_launches,
                                    probes=probes_from(self.rank_alone, self.bandwidth, self.allreduce))
        outcome.files.update(self.traces)
        outcome.plan, outcome.partial = self.plan_json(), self.partial()
        outcome.session_rss_mb, outcome.session_private_mb = (value / 2**20 or None for value in self.rss_beside_ranks)
        outcome.comparison = self.against.comparison() if self.against is not None else None
        self._outcome = write_outcome(outcome, self.series, self.opts)
        return self._outcome
