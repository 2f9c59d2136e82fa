"""The regression gate: does this run's scaling curve show a slowdown, against a saved baseline?

Per (thread policy, world size) two metrics: the median step time current / baseline, and (above the
smallest world size) the parallel efficiency current / baseline, which cancels machine-speed drift
between sessions. Each gets one of three verdicts:

- **regressed**: the slowdown is statistically significant against "no change" (one-sided t test on
  per-launch log medians, ``launchstats``) AND its point estimate is past the limit;
- **pass**: the data show that any slowdown is below the limit (the upper confidence bound at
  1 - beta lies inside it: a slowdown at the limit is called pass at most beta of the time);
- **inconclusive**: neither; the suite then measures more launches, up to a fixed maximum.

alpha is the false-alarm budget of a whole suite run: it is divided (Bonferroni) by the number of
metrics gated and by the number of looks the adaptive launches may take, so neither many world sizes
nor repeated looks inflate it.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from lanemodel.analysis.launchstats import (
    LogDifference,
    PairedGroups,
    SampleGroups,
    combine,
    log_medians,
    median_precision,
)
from lanemodel.analysis.stats import median_of_launches
from lanemodel.records import RunConfig, SchemaError, check_version
from lanemodel.settings import BY_NAME, SettingsError

STEP_TIME = "step_time_ratio"
EFFICIENCY = "efficiency_ratio"


def _default(name: str) -> float:
    """The option's default, declared once in lanemodel.settings."""
    return float(BY_NAME[name].default)


class BaselineError(Exception):
    """The baseline cannot be used: missing, unreadable, or measured under other conditions."""


class GateSettingsError(ValueError):
    """A gate setting outside its sensible range; the message names the option."""


@dataclass(frozen=True)
class GateSettings:
    """The rule's parameters; every one is a suite option (``--scaling-<name>``) and an ini key."""

    max_slowdown: float = _default("scaling_max_slowdown")      # largest current/baseline step-time ratio
    max_efficiency_drop: float = _default("scaling_max_efficiency_drop")   # largest relative efficiency drop
    alpha: float = _default("scaling_alpha")                    # false-alarm budget of a whole suite run
    beta: float = _default("scaling_beta")                      # largest chance a slowdown at the limit passes
    session_sd: float = _default("scaling_session_sd")          # log-sd of a between-session offset
    looks: int = 1                      # how many times the adaptive launches may look at the data

    def validate(self) -> GateSettings:
        """Each limit checked by its option's own parser (lanemodel.settings), so the ranges live there once."""
        for name in ("max_slowdown", "max_efficiency_drop", "alpha", "beta", "session_sd"):
            option = BY_NAME[f"scaling_{name}"]
            try:
                option.parse(option.flag, repr(getattr(self, name)))
            except SettingsError as exc:
                raise GateSettingsError(str(exc)) from None
        if self.looks < 1:
            raise GateSettingsError(f"the gate needs at least one look, got {self.looks}")
        return self

    def alpha_per_test(self, metrics: int) -> float:
        return self.alpha / max(metrics, 1) / self.looks


@dataclass(frozen=True)
class Series:
    """What the gate needs of one (policy, world size): per-launch kept step times and the global batch."""

    policy: str
    world_size: int
    global_batch_size: int
    launches: tuple[tuple[float, ...], ...]
    benchmark: str = ""

    @property
    def log_medians(self) -> tuple[float, ...]:
        return log_medians(self.launches)

    @property
    def median(self) -> float:
        return median_of_launches(self.launches)


@dataclass(frozen=True)
class GateVerdict:
    benchmark: str
    policy: str
    world_size: int
    metric: str                 # STEP_TIME or EFFICIENCY
    baseline_value: float       # median step time (s) or parallel efficiency
    current_value: float
    ratio: float                # current / baseline
    ratio_low: float            # two-sided (1 - 2 alpha_test) interval of the ratio
    ratio_high: float
    p_value: float              # one-sided, against "no change", in the worse direction
    alpha: float                # per-test threshold after the corrections
    limit: float
    launches: tuple[int, int]   # (current, baseline) launches the verdict used
    verdict: str

    def describe(self) -> str:
        return (f"world size {self.world_size} ({self.policy}): {self.metric} {self.ratio:.3f} "
                f"[{self.ratio_low:.3f}, {self.ratio_high:.3f}] p={self.p_value:.2g} (alpha {self.alpha:.2g}), "
                f"limit {self.limit:.3f}, launches {self.launches[0]} vs {self.launches[1]} -> "
                f"{self.verdict.upper()}; baseline {self.baseline_value:.4g}, current {self.current_value:.4g}")


@dataclass
class GateResult:
    verdicts: list[GateVerdict]
    notes: list[str]            # world sizes only one run has, said out loud
    refused: str = ""           # why nothing was compared, when nothing was

    @property
    def regressed(self) -> list[GateVerdict]:
        return [v for v in self.verdicts if v.verdict == "regressed"]


def decide(diff: LogDifference, limit_log: float, alpha: float, beta: float) -> str:
    """The rule on a log ratio whose positive direction is worse; ``limit_log`` > 0."""
    if diff.p_worse() < alpha and diff.estimate > limit_log:
        return "regressed"
    if diff.upper_bound(1.0 - beta) < limit_log:
        return "pass"
    return "inconclusive"


def make_verdict(series: Series, metric: str, diff: LogDifference, sign: int, base_value: float, cur_value: float,
             limit: float, alpha: float, settings: GateSettings, launches: tuple[int, int]) -> GateVerdict:
    """``sign`` +1: a larger ratio is worse (step time); -1: a smaller one is (efficiency)."""
    limit_log = sign * math.log(limit)
    low, high = diff.lower_bound(1.0 - alpha), diff.upper_bound(1.0 - alpha)
    bounds = sorted(math.exp(sign * b) if math.isfinite(b) else (math.inf if sign * b > 0 else 0.0)
                    for b in (low, high))
    verdict = decide(diff, limit_log, alpha, settings.beta)
    return GateVerdict(series.benchmark, series.policy, series.world_size, metric, base_value, cur_value,
                       math.exp(sign * diff.estimate) if math.isfinite(diff.estimate) else math.nan,
                       bounds[0], bounds[1], diff.p_worse(), alpha, limit, launches, verdict)


def metrics_gated(keys: set[tuple[str, int]]) -> int:
    """Step time at every shared world size, efficiency at every one above its policy's smallest."""
    policies = {policy for policy, _ in keys}
    return 2 * len(keys) - len(policies)


def compare(current: dict[tuple[str, int], Series], baseline: dict[tuple[str, int], Series],
            settings: GateSettings, paired: bool = False, metrics: int | None = None) -> GateResult:
    """Verdicts for every (policy, world size) both runs measured; refuses when they share none.

    ``paired``: the two runs are interleaved launches of one session (``--scaling-ab``): launch i of one
    ran next to launch i of the other, so the test is paired and no session-to-session term enters.
    ``metrics`` is the number of metrics the whole run gates (for the alpha correction), when this call
    judges only part of them (the adaptive launches look at one world size at a time).
    """
    shared = set(current) & set(baseline)
    if not shared:
        raise BaselineError(f"the baseline and this run share no (threads, world size): baseline has "
                            f"{describe_keys(baseline)}, this run has {describe_keys(current)}")
    notes = [f"world size {ws} ({policy}) is only in the {side}, so it is not gated"
             for side, keys in (("baseline", set(baseline) - shared), ("current run", set(current) - shared))
             for policy, ws in sorted(keys)]
    alpha = settings.alpha_per_test(metrics if metrics is not None else metrics_gated(shared))
    session_sd = 0.0 if paired else settings.session_sd
    kind = PairedGroups if paired else SampleGroups
    groups = {key: kind(current[key].log_medians, baseline[key].log_medians) for key in shared}
    verdicts = []
    for key in sorted(shared):
        policy, ws = key
        cur, base = current[key], baseline[key]
        counts = (len(cur.launches), len(base.launches))
        verdicts.append(make_verdict(cur, STEP_TIME, combine([(groups[key], 1.0)], session_sd), 1, base.median,
                                 cur.median, settings.max_slowdown, alpha, settings, counts))
        ref = min(w for p, w in shared if p == policy)
        if ws == ref:
            continue
        # log efficiency ratio = (d_ref - d_N): the session offset, common to both sizes, cancels.
        diff = combine([(groups[key], 1.0), (groups[(policy, ref)], -1.0)], 0.0)
        scale = (cur.global_batch_size / current[(policy, ref)].global_batch_size) * ref / ws
        verdicts.append(make_verdict(cur, EFFICIENCY, diff, -1, scale * baseline[(policy, ref)].median / base.median,
                                 scale * current[(policy, ref)].median / cur.median,
                                 1.0 - settings.max_efficiency_drop, alpha, settings, counts))
    return GateResult(verdicts, notes)


def describe_keys(keys) -> str:
    """(policy, world size) keys as "{tuned ws1, tuned ws2}", for messages that name what each run has."""
    return "{" + ", ".join(f"{policy} ws{ws}" for policy, ws in sorted(keys)) + "}" if keys else "nothing"


def series_from_benchmarks(benchmarks: list[dict]) -> dict[tuple[str, int], Series]:
    """The gate's input from pytest-benchmark entries (saved files, or this session's benchmarks)."""
    out = {}
    for bench in benchmarks:
        info = bench.get("extra_info", {})
        if "world_size" in info and info.get("step_times"):
            launches = tuple(tuple(float(t) for t in steps) for steps in info["step_times"] if steps)
            if launches:
                out[(str(info["threads"]), int(info["world_size"]))] = Series(
                    str(info["threads"]), int(info["world_size"]), int(info["global_batch_size"]), launches,
                    bench.get("name", ""))
    return out


def load_baseline(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BaselineError(f"baseline file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"baseline file {path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise BaselineError(f"baseline file {path} is not a pytest-benchmark file (no 'benchmarks' list)")
    if not isinstance(data.get("scaling"), dict) or "config" not in data["scaling"]:
        raise BaselineError(f"baseline file {path} has no 'scaling' section: it was not saved by this suite")
    try:
        check_version(data["scaling"], f"baseline file {path}")
    except SchemaError as exc:
        raise BaselineError(str(exc)) from None
    return data


def check_comparable(baseline: dict, current: RunConfig | dict, name: str) -> None:
    """Refuse, naming every difference (``RunConfig``'s comparable fields), rather than compare runs from
    different set-ups."""
    current = current if isinstance(current, RunConfig) else RunConfig.from_json(current)
    diffs = [f"{field}: baseline {base!r}, current {value!r}"
             for field, base, value in RunConfig.from_json(baseline["scaling"]["config"]).differences(current)]
    if diffs:
        raise BaselineError(f"baseline {name} was measured under a different configuration or machine and is "
                            f"not compared:\n  " + "\n  ".join(diffs))


def verdicts_json(result: GateResult, baseline_name: str, settings: GateSettings) -> dict:
    return {"baseline": baseline_name, "settings": asdict(settings),
            "verdicts": [asdict(v) for v in result.verdicts], "notes": result.notes,
            "refused": result.refused or None, "regressed": bool(result.regressed)}


PRECISION_TARGET = 0.01     # standard error of a series' mean log median a baseline run aims for (about 1 %)


def standard_error(series: Series) -> float:
    return median_precision(series.launches)


def more_launches_needed(key: tuple[str, int], current: dict[tuple[str, int], Series],
                         baseline: dict[tuple[str, int], Series], settings: GateSettings, metrics: int,
                         paired: bool = False, precise: bool = False) -> str:
    """Why the measurements at ``key`` cannot be concluded yet; empty when they can.

    With a baseline: a verdict at this world size is inconclusive. Without one, in a baseline-quality run
    (``precise``): the median is not yet known to PRECISION_TARGET, so the run would make an imprecise baseline.
    """
    if key not in current:
        return ""
    if key not in baseline:
        error = standard_error(current[key])
        return "" if error <= PRECISION_TARGET or not precise else (
            f"median known to {error:.1%} (target {PRECISION_TARGET:.0%}) for a precise baseline")
    shared = set(current) & set(baseline)
    result = compare({k: current[k] for k in shared}, {k: baseline[k] for k in shared}, settings,
                     paired=paired, metrics=metrics)
    undecided = [v for v in result.verdicts if (v.policy, v.world_size) == key and v.verdict == "inconclusive"]
    helpable = [v for v in undecided if paired or v.metric == EFFICIENCY
                or _launches_can_help(current[key], baseline[key], settings.session_sd)]
    return ", ".join(f"{v.metric} {v.ratio:.3f} inconclusive" for v in helpable)


def _launches_can_help(current: Series, baseline: Series, session_sd: float) -> bool:
    """More current launches shrink only the current run's share of the launch-to-launch variance; when
    the rest (the baseline's share and the session-to-session part) dominates, they cannot decide."""
    groups = SampleGroups(current.log_medians, baseline.log_medians)
    variance, df = groups.pooled_variance
    if df == 0 or not math.isfinite(variance):
        return True
    reducible = variance / len(groups.current)
    total = groups.variance_of_difference + session_sd ** 2
    return reducible > 0.25 * total
