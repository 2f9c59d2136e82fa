"""A measurement's settings, typed by concern: each group a frozen dataclass that checks itself when built, and
``SweepSettings`` the groups together, with the checks that span two of them. ``options.parse_settings``
builds them once from the command line, the environment and the ini file; every error names the option."""
from __future__ import annotations

from dataclasses import dataclass

from lanemodel.records import LANE_WORKLOAD


class SettingsError(ValueError):
    """Bad option value found before any work started; the message names the option."""




@dataclass(frozen=True)
class WorkloadSettings:
    """What every launch trains: the workload (the lane detector by default, its preset and data), steps, batch and
    how it scales, and injected slowdowns."""

    preset: str
    spec: str                       # MODULE:ATTR of the workload
    data: str                       # the lane detector's TuSimple data set ("": synthetic frames)
    steps: int                      # training steps per launch
    drop_warmup: int                # first steps of a launch left out of the statistics
    global_batch: int               # strong: the global batch; weak: the per-rank batch
    scaling: str                    # strong or weak
    inject_comm_delay_ms: float     # sleep added to every all-reduce (a slowdown the gate must catch)
    inject_step_slowdown: float     # percent added to every step's CPU work (the same)

    def __post_init__(self) -> None:
        if self.data and self.spec != LANE_WORKLOAD:
            raise SettingsError(f"--data is the lane detector's TuSimple data set; --workload {self.spec} makes its "
                                f"own data in dataset()")
        if self.drop_warmup >= self.steps:
            raise SettingsError(f"--drop-warmup {self.drop_warmup} leaves no step of --steps {self.steps} to "
                                f"measure; give more steps than warm-up steps")


@dataclass(frozen=True)
class LaunchSettings:
    """How the ranks of a launch start and where: world sizes, thread policies, spawn, launcher, nodes."""

    world_sizes: tuple[int, ...]
    threads: tuple[str, ...]        # thread policies: naive, tuned, or a count per rank
    spawn: str                      # fresh interpreters, or forked from a server
    launcher: str                   # embedded, torchrun or slurm
    slurm_partition: str
    nodes: int                      # emulated nodes (network namespaces) the ranks are spread over
    link_gbit: float                # their links' rate
    launch_timeout: float           # seconds before a launch's process tree is killed

    def __post_init__(self) -> None:
        if self.nodes > 1 and self.launcher != "torchrun":
            raise SettingsError(f"--nodes {self.nodes} runs one torchrun agent per emulated node: give "
                                f"--launcher torchrun")
        if self.nodes > 1 and (bad := [ws for ws in self.world_sizes if ws % self.nodes]):
            raise SettingsError(f"--world-sizes: {bad[0]} ranks do not split evenly over --nodes {self.nodes}")
        if self.launcher in ("torchrun", "slurm") and self.spawn != "fresh":
            raise SettingsError(f"--launcher {self.launcher} starts fresh interpreters; --spawn {self.spawn} "
                                f"cannot apply (give --spawn fresh)")


@dataclass(frozen=True)
class PlanSettings:
    """How many launches a session runs and what else it measures (resolved: no "auto" left)."""

    rounds: int                     # launches per world size before any extension
    warmup_launches: int
    probes: int                     # 1: the cause probes
    profile_steps: int              # K > 0: one profiled launch per world size
    max_rounds: int                 # most launches per world size
    session_budget_s: float         # the session plan's budget (0: no plan)
    precise: int                    # 1: a baseline-quality run
    extra_budget_s: float           # wall seconds the gate's extra launches may take

    def __post_init__(self) -> None:
        if self.max_rounds < self.rounds:
            raise SettingsError(f"--scaling-max-rounds {self.max_rounds} is below --rounds {self.rounds}")


@dataclass(frozen=True)
class GateOptions:
    """What a session is gated against and the rule's limits, as given (``analysis.gate.GateSettings`` is the
    rule made from them)."""

    baseline: str                   # a saved run's path, id or name
    history: int                    # the last N comparable saved runs (0: off)
    max_slowdown: float
    max_efficiency_drop: float
    alpha: float
    beta: float
    session_sd: float

    def __post_init__(self) -> None:
        if self.history == 1:
            raise SettingsError("--scaling-history 1: the run-to-run spread needs at least 2 saved runs")


@dataclass(frozen=True)
class ABSettings:
    """The same-session A/B against a git ref (--scaling-ab)."""

    ref: str                        # empty: no A/B
    max_slowdown: float
    rounds: int                     # blocks per world size


@dataclass(frozen=True)
class LeverSettings:
    """The lever study (--levers)."""

    spec: str                       # empty: no study
    blocks: int
    loss_tolerance: float


@dataclass(frozen=True)
class OutputSettings:
    """Where a session's files go."""

    results_dir: str
    summary_md: str                 # the reviewer's summary (empty: none)


@dataclass(frozen=True)
class SweepSettings:
    """Validated settings of a measurement (pytest suite or sweep), by concern."""

    workload: WorkloadSettings
    launch: LaunchSettings
    plan: PlanSettings
    gate: GateOptions
    ab: ABSettings
    levers: LeverSettings
    outputs: OutputSettings

    def __post_init__(self) -> None:
        if self.ab.ref and self.launch.spawn != "fresh":
            raise SettingsError(f"--scaling-ab needs --spawn fresh (REF's ranks import REF's code in their own "
                                f"interpreters), got --spawn {self.launch.spawn}")
        against = self.compared_by()
        if len(against) > 1:
            raise SettingsError(f"{' and '.join(against)} each name what to gate against; give one")
        if self.levers.spec.strip() and against:
            raise SettingsError(f"--levers runs a study against the default configuration, not a comparison with "
                                f"other code: leave out {against[0]}")

    def compared_by(self) -> list[str]:
        """The options that name what this run is gated against (at most one is allowed)."""
        return [flag for flag, given in (("--scaling-ab", self.ab.ref), ("--scaling-baseline", self.gate.baseline),
                                         ("--scaling-history", self.gate.history)) if given]
