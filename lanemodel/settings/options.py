"""Every option of a scaling measurement, declared once, and the settings parsed from them.

The pytest suite (``--world-sizes`` and ``scaling_world_sizes`` in pytest.ini), ``python -m lanemodel
sweep`` and the gate read their options from ``OPTIONS``: one name, one default, one help text, one
parser that names the option in its error. Pure Python, so the CLI can check its input before torch loads.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from lanemodel.settings.groups import (
    LANE_WORKLOAD,
    ABSettings,
    GateOptions,
    LaunchSettings,
    LeverSettings,
    OutputSettings,
    PlanSettings,
    SettingsError,
    SweepSettings,
    WorkloadSettings,
)

PRESET_NAMES = ("tiny", "small", "full")       # lanemodel.training.model.PRESETS, checked by a test
SCALING_MODES = ("strong", "weak")
SPAWN_METHODS = ("fresh", "forkserver")
LAUNCHERS = ("embedded", "torchrun", "slurm")
DEFAULT_SESSION_BUDGET_S = 260.0   # `./run bench` (1-16 processes, tiny) within 5 min on a 2-core guest
PLANNED_MIN_ROUNDS = 1             # launches every world size of a planned session gets (launchplan.MIN_LAUNCHES)
PRECISE_ROUNDS, MAX_ROUNDS = 10, 20


def argparse_help(text: str) -> str:
    """Help text as argparse wants it: a literal percent sign doubled (it formats help with %)."""
    return text.replace("%", "%%")


@dataclass(frozen=True)
class Option:
    name: str
    default: str
    help: str
    parse: Callable[[str, str], Any]     # (flag, text) -> value, raising SettingsError
    scope: str = "sweep"                 # "sweep": suite and `python -m lanemodel sweep`; "suite": pytest only
    ini: str = ""
    switch: bool = False                 # given alone on the command line (``--scaling-precise``) means "1"
    sweep_default: str | None = None     # `python -m lanemodel sweep`'s own default without --rounds
    group: str = "workload"              # the SweepSettings group it belongs to (``groups``)
    field: str = ""                      # its name in that group (default: its own name)

    @property
    def key(self) -> str:
        return self.field or self.name

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def ini_key(self) -> str:
        return self.ini or (self.name if self.name.startswith("scaling_") else f"scaling_{self.name}")


def _number(kind: type, low: float, high: float = math.inf, low_open: bool = False):
    def parse(flag: str, text: str):
        try:
            value = kind(text)
        except ValueError:
            raise SettingsError(f"{flag}: {text!r} is not a {'whole ' if kind is int else ''}number") from None
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            raise SettingsError(f"{flag} must be {bound}" + (f" and <= {high:g}" if high != math.inf else "")
                                + f", got {text}")
        return value
    return parse


def _choice(choices: tuple[str, ...]):
    def parse(flag: str, text: str) -> str:
        if text not in choices:
            raise SettingsError(f"{flag}: unknown value {text!r}; choose one of {', '.join(choices)}")
        return text
    return parse


def parse_world_sizes(flag: str, text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise SettingsError(f"{flag} is empty ({text!r}); give e.g. 1,2,4")
    sizes = []
    for part in parts:
        try:
            size = int(part)
        except ValueError:
            raise SettingsError(f"{flag}: {part!r} is not a whole number") from None
        if size < 1:
            raise SettingsError(f"{flag}: {size} is not a valid world size (must be >= 1)")
        sizes.append(size)
    if len(set(sizes)) != len(sizes):
        raise SettingsError(f"{flag}: {text!r} names a world size twice")
    return tuple(sizes)


def check_policy(text: str) -> str:
    """A thread policy: naive, tuned, or a thread count of at least 1."""
    if text in ("naive", "tuned") or (text.isdigit() and int(text) >= 1):
        return text
    raise ValueError(f"thread policy must be naive, tuned or a positive integer, got {text!r}")


def parse_thread_policies(flag: str, text: str) -> tuple[str, ...]:
    policies = tuple(p.strip() for p in text.split(",") if p.strip())
    if not policies:
        raise SettingsError(f"{flag} is empty; give naive, tuned or a thread count")
    for policy in policies:
        try:
            check_policy(policy)
        except ValueError as exc:
            raise SettingsError(f"{flag}: {exc}") from None
    return policies


def _workload_spec(flag: str, text: str) -> str:
    module, sep, attr = text.strip().partition(":")
    if not sep or not module or not attr or not all(part.isidentifier() for part in (*module.split("."),
                                                                                    *attr.split("."))):
        raise SettingsError(f"{flag}: {text!r} is not MODULE:ATTR (e.g. mymodel:MyWorkload)")
    return text.strip()


def _text(flag: str, text: str) -> str:
    return text


AUTO = "auto"


def _or_auto(parse: Callable[[str, str], Any]) -> Callable[[str, str], Any]:
    """``auto`` (None: resolved by parse_settings from the other options) or what ``parse`` accepts."""
    def parse_or_auto(flag: str, text: str):
        return None if text.strip() == AUTO else parse(flag, text)
    return parse_or_auto


OPTIONS: tuple[Option, ...] = (
    Option("world_sizes", "1,2,4,8,16", "comma-separated DDP world sizes to measure", parse_world_sizes,
           group="launch"),
    Option("workload", LANE_WORKLOAD, "what every rank trains, MODULE:ATTR: a class or zero-argument factory whose "
           "object has name, model(), dataset() of (inputs, target) items, loss(output, target) and optionally "
           "optimizer(params); MODULE is imported from the directory the session runs in", _workload_spec,
           field="spec"),
    Option("data", "", "the lane detector's data set: a directory in TuSimple's layout (label_data_*.json and the "
           "clips/ images their raw_file names), its JPEGs decoded at every step; empty: synthetic frames decoded "
           "once", _text),
    Option("preset", "tiny", "the lane detector's model preset: tiny, small or full", _choice(PRESET_NAMES)),
    Option("steps", "12", "training steps per launch", _number(int, 1)),
    Option("drop_warmup", "2", "first steps of each launch left out of the statistics (DDP rebuilds buckets)",
           _number(int, 0)),
    Option("global_batch", "16", "global batch (strong scaling) or per-rank batch (weak)", _number(int, 1)),
    Option("threads", "tuned", "thread policies, comma-separated: naive, tuned, or a count per rank",
           parse_thread_policies, group="launch"),
    Option("scaling", "strong", "strong (fixed global batch) or weak (fixed per-rank batch)",
           _choice(SCALING_MODES), ini="scaling_mode"),
    Option("spawn", "fresh", "start ranks as fresh interpreters (fresh) or fork them from a server that "
           "has imported torch (forkserver)", _choice(SPAWN_METHODS), group="launch"),
    Option("launcher", "embedded", "embedded: this suite starts every rank; torchrun: every launch is a torchrun "
           "job (--standalone) running the same rank entry point (needs --spawn fresh); slurm: every launch is a Slurm "
           "job step, one srun task per rank (inside an allocation, or a job of its own in --slurm-partition)",
           _choice(LAUNCHERS), group="launch"),
    Option("slurm_partition", "", "with --launcher slurm outside an allocation: the partition srun's own job runs in "
           "(srun's SLURM_PARTITION)", _text, group="launch"),
    Option("nodes", "1", "K > 1: emulated nodes, each a network namespace with its own torchrun agent, joined "
           "through a bridge by links of --link-gbit (needs root and --launcher torchrun; world sizes split evenly "
           "over the nodes)", _number(int, 1, 64), group="launch"),
    Option("link_gbit", "1", "rate of every emulated node's link, each way, in Gbit/s (tc tbf)",
           _number(float, 0.0, 400.0, low_open=True), group="launch"),
    Option("results_dir", "results", "where metrics JSON, plots and REPORT.md go", _text, group="outputs"),
    Option("launch_timeout", "900", "seconds before a launch's process tree is killed",
           _number(float, 0, low_open=True), group="launch"),
    Option("inject_comm_delay_ms", "0", "sleep added to every cross-rank all-reduce (a slowdown the gate must "
           "catch; not a comparability difference)", _number(float, 0)),
    Option("inject_step_slowdown", "0", "percent by which every rank's every step is made longer, at every "
           "world size (a slowdown the gate must catch; not a comparability difference)", _number(float, 0, 1000)),
    Option("rounds", AUTO, "launches per world size, the samples: auto plans them within "
           "--scaling-session-budget-s (at least 1 each; 10 with --scaling-precise); N runs exactly N (more only "
           "with a larger --scaling-max-rounds, while a gate verdict is inconclusive)", _or_auto(_number(int, 1)),
           sweep_default="1", group="plan"),
    Option("warmup_launches", "1", "unrecorded launches per world size before the measured ones (the first "
           "launch of a session ran up to 2x slower here)", _number(int, 0), sweep_default="0", group="plan"),
    Option("probes", "1", "1: also measure the causes the curve cannot show by itself: one rank alone at each "
           "world size's per-rank batch, and memory bandwidth by 1..cores concurrent processes; 0: off (A/B runs "
           "never probe)", _number(int, 0, 1), sweep_default="0", group="plan"),
    Option("profile_steps", "0", "K > 0: one more launch per world size, outside the statistics, records "
           "torch.profiler traces of K steps (<results>/traces/<threads>_ws<N>/trace_rank<R>.json, linked from "
           "REPORT.md)", _number(int, 0), scope="suite", group="plan"),
    Option("scaling_max_rounds", AUTO, "most launches per world size (auto: 20 with --rounds auto or "
           "--scaling-precise, else --rounds); extra ones run while a gate verdict is inconclusive or, with "
           "--scaling-precise and no baseline, until the median is known to about 1 %",
           _or_auto(_number(int, 1)), group="plan", field="max_rounds"),
    Option("scaling_session_budget_s", AUTO, "wall seconds a session's launches and probes may take, measured "
           f"from its first launch: the plan gives each world size its launches from the measured cost of one "
           f"(auto: {DEFAULT_SESSION_BUDGET_S:g} with --rounds auto, else off; 0: off)",
           _or_auto(_number(float, 0)), group="plan", field="session_budget_s"),
    Option("scaling_precise", "0", "1: a baseline-quality run, as every session was before the session budget: "
           "10 launches per world size, then more (up to 20, within --scaling-budget-s) until each median is "
           "known to about 1 % when nothing is compared", _number(int, 0, 1),
           scope="suite", switch=True, group="plan", field="precise"),
    Option("scaling_budget_s", "240", "wall seconds the extra launches of a session may take in all (an "
           "extension that would overrun it, projected from the launches so far, does not start)",
           _number(float, 0), scope="suite", group="plan", field="extra_budget_s"),
    Option("scaling_baseline", "", "baseline to gate against: a saved JSON path, or a run id/name in the "
           "benchmark storage (default: the --benchmark-compare one)", _text,
           scope="suite", group="gate", field="baseline"),
    Option("scaling_history", "0", "gate against the last N comparable saved runs in the benchmark storage, "
           "their run-to-run spread being the noise (0: off; at least 2)", _number(int, 0),
           scope="suite", group="gate", field="history"),
    Option("scaling_ab", "", "gate against REF, a git ref of this project, measured in this session: REF's "
           "launches interleave with the working tree's in a randomized balanced order (needs --spawn fresh)",
           _text, scope="suite", group="ab", field="ref"),
    Option("scaling_ab_max_slowdown", "1.03", "with --scaling-ab: largest allowed working tree/REF step-time ratio "
           "(the efficiency may drop by the same factor)", _number(float, 1.0, 3.0, low_open=True),
           scope="suite", group="ab", field="max_slowdown"),
    Option("scaling_ab_rounds", "8", "with --scaling-ab: blocks (one REF and one working-tree launch each) per "
           "world size, in place of --rounds; up to twice as many while a verdict is inconclusive (in place of "
           "--scaling-max-rounds)", _number(int, 2), scope="suite", group="ab", field="rounds"),
    Option("scaling_max_slowdown", "1.10", "largest allowed current/baseline median step-time ratio",
           _number(float, 1.0, 3.0, low_open=True), scope="suite", group="gate", field="max_slowdown"),
    Option("scaling_max_efficiency_drop", "0.10", "largest allowed relative drop of parallel efficiency",
           _number(float, 0.0, 0.9, low_open=True), scope="suite", group="gate", field="max_efficiency_drop"),
    Option("scaling_alpha", "0.05", "false-alarm budget of a whole gated run (divided over metrics and looks)",
           _number(float, 0.0, 0.5, low_open=True), scope="suite", group="gate", field="alpha"),
    Option("scaling_beta", "0.20", "largest chance that a slowdown at the limit is called pass",
           _number(float, 0.0, 0.5, low_open=True), scope="suite", group="gate", field="beta"),
    Option("scaling_session_sd", "0.03", "log-sd of the session-to-session offset of a step-time ratio, "
           "measured by --gate-calibration on this machine kind", _number(float, 0.0, 0.5),
           scope="suite", group="gate", field="session_sd"),
    Option("levers", "", "run the lever study instead of the sweep: each value against the default configuration "
           "in paired blocks, e.g. comm_hook=bf16,powersgd:1;bucket_cap_mb=1,100;accumulate=2 (levers: comm_hook, "
           "accumulate, bucket_cap_mb, static_graph, gradient_as_bucket_view, threads)", _text,
           scope="suite", group="levers", field="spec"),
    Option("levers_blocks", "3", "with --levers: blocks per world size, each the default and every value once, "
           "from its own seed (the loss test's samples)", _number(int, 2, 50),
           scope="suite", group="levers", field="blocks"),
    Option("levers_loss_tolerance", "0.02", "with --levers: largest relative loss difference (value against default, "
           "equal samples seen) still called training the same", _number(float, 0.0, 1.0, low_open=True),
           scope="suite", group="levers", field="loss_tolerance"),
    Option("scaling_summary_md", "", "write the gate's Markdown summary for a reviewer (headline, verdicts, both "
           "sides' curves, what moved, how to reproduce) to this file; also appended to $GITHUB_STEP_SUMMARY "
           "when that is set", _text, scope="suite", group="outputs", field="summary_md"),
)
BY_NAME = {option.name: option for option in OPTIONS}


GROUPS = {"workload": WorkloadSettings, "launch": LaunchSettings, "plan": PlanSettings, "gate": GateOptions,
          "ab": ABSettings, "levers": LeverSettings, "outputs": OutputSettings}


def parse_settings(raw: Mapping[str, str | None], sources: Mapping[str, str] | None = None) -> SweepSettings:
    """Parse every option (missing ones take their default), resolve the launch counts, and build the groups,
    each checking itself, then the settings, checking what spans groups. ``sources`` names where a value came
    from when that was not its flag (an environment variable), so that an error names what the user set.

    Every combination that leaves nothing to measure is refused here, before any launch.
    """
    values = {}
    for option in OPTIONS:
        text = raw.get(option.name)
        label = (sources or {}).get(option.name, option.flag)
        values[option.name] = option.parse(label, option.default if text is None else str(text))
    values.update(_resolve_launch_counts(values))
    grouped: dict[str, dict] = {group: {} for group in GROUPS}
    for option in OPTIONS:
        grouped[option.group][option.key] = values[option.name]
    return SweepSettings(**{group: GROUPS[group](**fields) for group, fields in grouped.items()})


def _resolve_launch_counts(values: Mapping) -> dict:
    """Launches per world size, their most, and the session budget, from what was given (None: auto).

    An explicit --rounds is what runs; auto plans them within the session budget. A/B sessions run their
    own blocks (paired: the same-session comparison needs fewer launches than a saved baseline), and
    --scaling-precise the baseline-quality counts, with no session budget unless one is given.
    """
    rounds, most, budget = values["rounds"], values["scaling_max_rounds"], values["scaling_session_budget_s"]
    if values["scaling_ab"]:
        rounds, most = values["scaling_ab_rounds"], 2 * values["scaling_ab_rounds"]
    elif values["scaling_precise"]:
        rounds, most = rounds or PRECISE_ROUNDS, most or MAX_ROUNDS
    elif rounds is None:
        rounds, most = PLANNED_MIN_ROUNDS, most or MAX_ROUNDS
        budget = DEFAULT_SESSION_BUDGET_S if budget is None else budget
    else:
        most = most or rounds
    return {"rounds": rounds, "scaling_max_rounds": most, "scaling_session_budget_s": budget or 0.0}


def baseline_quality(settings: SweepSettings) -> SweepSettings:
    """A planned run's settings made those of --scaling-precise (what the saved-baseline gate's error rates
    were measured with); settings with explicit launch counts stay as they are."""
    if not settings.plan.session_budget_s:
        return settings
    return replace(settings, plan=replace(settings.plan, rounds=PRECISE_ROUNDS, max_rounds=MAX_ROUNDS,
                                          session_budget_s=0.0, precise=1))


def check_batch_splits(settings: SweepSettings) -> None:
    """Strong scaling needs the global batch to split evenly over every world size of the sweep."""
    workload, sizes = settings.workload, settings.launch.world_sizes
    if workload.scaling != "strong":
        return
    bad = [ws for ws in sizes if workload.global_batch % ws]
    if bad:
        raise SettingsError(f"--global-batch {workload.global_batch} does not divide evenly across world "
                            f"size {bad[0]}; choose a multiple of {max(sizes)}")


def look_sizes(rounds: int, max_rounds: int) -> list[int]:
    """Launch counts at which the gate looks: rounds, then doubling, up to max_rounds."""
    sizes = [rounds]
    while sizes[-1] < max_rounds:
        sizes.append(min(sizes[-1] * 2, max_rounds))
    return sizes
