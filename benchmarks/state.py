"""What one pytest session of the suite measured and what it is compared with; shared by the plugin's hooks
and fixtures through the config's stash."""
from __future__ import annotations

import atexit
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from benchmarks import suite
from benchmarks.abtest import ABSession
from benchmarks.options import gate_settings, read_options, use_slurm
from benchmarks.planning import SessionPlanner
from lanemodel.analysis.claims import probes_from
from lanemodel.analysis.curve import analyse, analysis_json
from lanemodel.analysis.gate import GateSettings, GateSettingsError, Series, compare
from lanemodel.analysis.history import SavedRun, compare_with_history
from lanemodel.analysis.outcome import Comparison, SuiteOutcome
from lanemodel.engine.progress import Progress
from lanemodel.records import LaunchSeries
from lanemodel.settings import SweepSettings


class SuiteState:
    """What one pytest session measured, and what it concluded (computed once, on first request)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self._options: SweepSettings | None = None
        self._gate: GateSettings | None = None
        self.series: LaunchSeries = {}
        self.baseline: dict | None = None
        self.baseline_series: dict[tuple[str, int], Series] = {}
        self.baseline_name = ""
        self.planned: set[tuple[str, int]] = set()
        self.extra_launches: list[str] = []
        self.extra_seconds = 0.0
        self.progress: Progress | None = None
        self.outcome: SuiteOutcome | None = None
        self.ab: ABSession | None = None          # --scaling-ab: REF's code and launches
        self.cleanup = ExitStack()                # REF's worktree, the emulated nodes: gone when the session ends
        # pytest_unconfigure closes it; at interpreter exit too, for a session that died on its way out
        # (e.g. writing to a closed pipe after its parent was killed, which left a worktree once)
        atexit.register(self.cleanup.close)
        self.ref_saved = False
        self.history: list[SavedRun] = []         # --scaling-history: the last N comparable saved runs
        self.rank_alone: LaunchSeries = {}         # the batch-splitting probe, keyed by the world size it stands for
        self.bandwidth: dict = {}                  # the memory-bandwidth probe
        self.allreduce: dict[tuple[str, int], dict] = {}   # the all-reduce microbenchmark per (policy, world size)
        self.traces: dict[str, str] = {}           # --profile-steps: torch.profiler trace per rank
        self.nodes = None                          # --nodes K: the emulated nodes (engine.netns.EmulatedNodes)
        self.planner: SessionPlanner | None = None   # --rounds auto: launches per world size within the session budget
        self.session_clock = SessionClock()
        self.now = ""                              # what the session is doing, for the note of an interruption
        self.interrupted = ""                      # Ctrl-C or SIGTERM: when it came and what it stopped
        self.failures: list[str] = []              # launches that failed (a timeout among them), one line each
        self.summaries: list[tuple[Path, bool]] = []   # where the reviewer's summary goes (path, append)
        self.lever_values: tuple = ()              # --levers: the values, parsed and checked at collection
        self.levers = None                         # --levers: the study (benchmarks.levers.LeverStudy)

    @property
    def options(self) -> SweepSettings:
        if self._options is None:
            opts = read_options(self.config)
            if opts.launcher == "slurm":
                use_slurm(opts)
            self._options = opts
        return self._options

    @property
    def gate(self) -> GateSettings:
        if self._gate is None:
            try:
                self._gate = gate_settings(self.options)
            except GateSettingsError as exc:
                raise pytest.UsageError(str(exc)) from None
        return self._gate

    def finish(self) -> SuiteOutcome | None:
        if self.outcome is None and self.series:
            self.outcome = suite.conclude(self.series, self.options, self.gate, self.current_benchmarks(),
                                          self.judge(), self.baseline_name, self.extra_launches,
                                          probes_from(self.rank_alone, self.bandwidth, self.allreduce), self.traces,
                                          plan=self.plan_json(), partial=self.partial(),
                                          comparison=self.comparison())
        return self.outcome

    def comparison(self) -> Comparison | None:
        """The other side of the gate, named for the summary, with its curve for the plots: REF's launches of
        this session, a saved baseline's curve, or the history (no one curve)."""
        if self.ab is not None:
            code = self.ab.code
            finished = {key: [launch for launch in launches if launch.finished]
                        for key, launches in self.ab.series.items()}
            finished = {key: launches for key, launches in finished.items() if launches}
            named = "" if code.commit.startswith(code.ref) else f"{code.ref}@"      # a commit id names itself
            return Comparison(f"{named}{code.commit[:7]}", "REF", f"--scaling-ab {code.ref}",
                              analysis_json(analyse(finished)) if finished else {})
        if self.history:
            return Comparison(self.baseline_name, "history", f"--scaling-history {self.options.scaling_history}")
        if self.baseline is not None:
            return Comparison(Path(self.baseline_name).stem, "baseline", f"--scaling-baseline {self.baseline_name}",
                              self.baseline.get("scaling", {}).get("analysis", {}))
        return None

    def plan_json(self) -> dict | None:
        plan = self.planner.plan if self.planner is not None else None
        return None if plan is None else {**plan.as_json(), "session_s": round(self.session_clock.elapsed(), 1)}

    def partial(self) -> list[str]:
        """Why this session measured less than it set out to: an interruption, failed launches, world sizes
        left without a finished launch. Empty for a complete session."""
        notes = ([self.interrupted] if self.interrupted else []) + self.failures
        measured = {key for key, launches in self.series.items() if any(launch.finished for launch in launches)}
        missing = sorted(self.planned - measured, key=lambda key: (key[0], key[1]))
        if missing and notes:       # without an interruption or a failure, a missing world size was deselected
            notes.append("no finished launch at " + ", ".join(f"world size {ws} ({policy})" for policy, ws in missing))
        return notes

    def judge(self) -> suite.Judge | None:
        """The gate against what this run is compared with: REF's interleaved launches (paired), the
        history of saved runs, or one saved baseline; None when there is nothing to compare with."""
        if self.ab is not None:
            ref = self.ab.ref_series()
            return lambda current: compare(current, ref, self.gate, paired=True)
        if self.history:
            return lambda current: compare_with_history(current, self.history, self.gate)
        if self.baseline is not None:
            return lambda current: compare(current, self.baseline_series, self.gate)
        return None

    def compared_with(self) -> tuple[dict[tuple[str, int], Series], bool, set[tuple[str, int]]]:
        """(what the gate compares this run with, whether it is paired, the keys it will gate)."""
        if self.ab is not None:
            return self.ab.ref_series(), True, self.planned
        return self.baseline_series, False, self.planned & set(self.baseline_series)

    def current_benchmarks(self) -> list[dict]:
        session = getattr(self.config, "_benchmarksession", None)
        if session is None:
            return []
        return [{"name": b.name, "fullname": b.fullname, "extra_info": b.extra_info} for b in session.benchmarks]

    def current_series(self, policy: str, world_size: int) -> Series | None:
        launches = [launch for launch in self.series.get((policy, world_size), []) if launch.finished]
        if not launches:
            return None
        return Series(policy, world_size, launches[0].global_batch_size,
                      tuple(launch.kept_step_times for launch in launches if launch.kept_step_times))


class SessionClock:
    """Seconds since the session's first launch: what --scaling-session-budget-s counts."""

    def __init__(self):
        self.started: float | None = None

    def start(self) -> None:
        if self.started is None:
            self.started = time.perf_counter()

    def elapsed(self) -> float:
        return 0.0 if self.started is None else time.perf_counter() - self.started


STATE_KEY = pytest.StashKey[SuiteState]()


def state_of(config: pytest.Config) -> SuiteState:
    return config.stash[STATE_KEY]
