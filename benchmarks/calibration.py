"""Measure the gate's error rates on this machine: repeated A/A and injected-slowdown comparisons.

Each round saves a fresh baseline in its own pytest session, then compares against it in further
sessions (A/A ones, and ones with ``--inject-step-slowdown`` 5, 10, 20 %), in a random order so that
drift during the calibration hits every kind alike. A session is the unit because the gate's hardest
noise is between sessions. Rates come with Wilson 95 % intervals (scipy.stats.binomtest).
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scipy import stats

from lanemodel.analysis.gate import GateSettings, compare, series_from_benchmarks
from lanemodel.session.opening import gate_settings
from lanemodel.settings import SweepSettings, baseline_quality

KINDS = ("A/A", "A/A", "A/A", "+5%", "+10%", "+20%")      # per round: three A/A, one of each slowdown
SLOWDOWN = {"A/A": 0.0, "+5%": 5.0, "+10%": 10.0, "+20%": 20.0}
SESSION_TIMEOUT_S = 1800
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Tally:
    runs: int = 0
    regressed: int = 0
    inconclusive: int = 0          # runs with at least one inconclusive verdict
    wall_times: list[float] = field(default_factory=list)
    step_ratios: list[float] = field(default_factory=list)

    def add(self, verdicts: list[str], wall: float | None, step_ratios: list[float]) -> None:
        self.runs += 1
        self.regressed += "regressed" in verdicts
        self.inconclusive += "inconclusive" in verdicts
        if wall is not None:
            self.wall_times.append(wall)
        self.step_ratios += [round(ratio, 4) for ratio in step_ratios]

    def add_session(self, saved: dict, wall: float) -> str:
        """Count one saved session's gate verdicts; returns them in words for the progress line."""
        verdicts = saved["scaling"]["gate"]["verdicts"]
        self.add([v["verdict"] for v in verdicts], wall,
                 [v["ratio"] for v in verdicts if v["metric"] == "step_time_ratio"])
        return ", ".join(f"ws{v['world_size']} {v['metric'].split('_')[0]} {v['ratio']:.3f} {v['verdict']}"
                         for v in verdicts)

    def rate(self, count: int) -> dict:
        if not self.runs:
            return {"rate": None, "low": None, "high": None}
        interval = stats.binomtest(count, self.runs).proportion_ci(confidence_level=0.95, method="wilson")
        return {"rate": count / self.runs, "low": float(interval.low), "high": float(interval.high)}

    def summary(self) -> dict:
        return {"runs": self.runs, "regressed": self.rate(self.regressed),
                "any_inconclusive": self.rate(self.inconclusive),
                "median_wall_s": sorted(self.wall_times)[len(self.wall_times) // 2] if self.wall_times else None,
                "step_time_ratios": self.step_ratios}


def session_args(opts: SweepSettings) -> list[str]:
    """The options of the calibrating session, passed on to every session it runs."""
    return ["--world-sizes", ",".join(map(str, opts.launch.world_sizes)), "--preset", opts.workload.preset,
            "--steps", str(opts.workload.steps), "--drop-warmup", str(opts.workload.drop_warmup),
            "--global-batch", str(opts.workload.global_batch), "--threads", ",".join(opts.launch.threads),
            "--scaling", opts.workload.scaling, "--spawn", opts.launch.spawn, "--rounds", str(opts.plan.rounds),
            "--warmup-launches", str(opts.plan.warmup_launches), "--probes", "0",
            "--scaling-max-rounds", str(opts.plan.max_rounds), "--scaling-budget-s", str(opts.plan.extra_budget_s),
            "--scaling-max-slowdown", str(opts.gate.max_slowdown),
            "--scaling-max-efficiency-drop", str(opts.gate.max_efficiency_drop),
            "--scaling-alpha", str(opts.gate.alpha), "--scaling-beta", str(opts.gate.beta),
            "--scaling-session-sd", str(opts.gate.session_sd),
            *(["--scaling-precise"] if opts.plan.precise else [])]


def run_session(work: Path, name: str, args: list[str], project: Path = ROOT) -> tuple[dict, float]:
    """One pytest session of the suite (of the code in ``project``); returns its saved run and wall time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", str(project / "benchmarks"), "-p", "no:cacheprovider",
                           "-q", "-p", "no:randomly", f"--benchmark-storage=file://{work / 'storage'}",
                           f"--benchmark-save={name}", "--results-dir", str(work / "results"), *args],
                          cwd=project, capture_output=True, text=True, timeout=SESSION_TIMEOUT_S, env=env)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"calibration session {name} failed with exit code {proc.returncode}:\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    (saved,) = sorted((work / "storage").rglob(f"*_{name}.json"))
    return json.loads(saved.read_text()), wall


def calibrate(opts: SweepSettings, rounds: int, work: Path, note: Callable[[str], None] = print,
              seed: int = 0, progress_file: Path | None = None) -> dict:
    """``rounds`` rounds of: a baseline session, then the KINDS against it in a random order.

    Besides each session's own verdicts (against its round's baseline), every comparison session is
    judged again against the baselines of the other rounds ("cross" pairs): more A/A pairs from the
    same sessions, each against a baseline saved in another session, though not independent ones.
    """
    rng = random.Random(seed)
    opts = baseline_quality(opts)    # baselines and comparisons as --scaling-precise makes them
    base_args = session_args(opts)
    settings = gate_settings(opts)
    tallies = {kind: Tally() for kind in SLOWDOWN}
    baselines: list[dict] = []
    sessions: list[tuple[str, int, dict]] = []
    result: dict = {}
    for round_index in range(rounds):
        baseline, wall = run_session(work, f"base{round_index}", base_args)
        baselines.append(baseline)
        baseline_path = sorted((work / "storage").rglob(f"*_base{round_index}.json"))[0]
        note(f"round {round_index + 1}/{rounds}: baseline saved in {wall:.0f} s")
        kinds = list(KINDS)
        rng.shuffle(kinds)
        for index, kind in enumerate(kinds):
            args = [*base_args, "--scaling-baseline", str(baseline_path),
                    "--inject-step-slowdown", str(SLOWDOWN[kind])]
            saved, wall = run_session(work, f"r{round_index}_{index}", args)
            sessions.append((kind, round_index, saved))
            note(f"  {kind:>5}: {tallies[kind].add_session(saved, wall)} ({wall:.0f} s)")
            result = {"rounds": round_index + 1, "settings": asdict(opts), "gate": asdict(settings),
                      "kinds": {k: t.summary() for k, t in tallies.items()},
                      "cross": cross_pairs(sessions, baselines, settings)}
            if progress_file is not None:
                progress_file.write_text(json.dumps(result, indent=1))
    return result


def cross_pairs(sessions: list[tuple[str, int, dict]], baselines: list[dict], settings: GateSettings) -> dict:
    """Every comparison session judged against the baselines of the other rounds."""
    tallies = {kind: Tally() for kind in SLOWDOWN}
    for kind, round_index, saved in sessions:
        current = series_from_benchmarks(saved["benchmarks"])
        for other, baseline in enumerate(baselines):
            if other == round_index:
                continue
            verdicts = compare(current, series_from_benchmarks(baseline["benchmarks"]), settings).verdicts
            tallies[kind].add([v.verdict for v in verdicts], None,
                              [v.ratio for v in verdicts if v.metric == "step_time_ratio"])
    return {kind: tally.summary() for kind, tally in tallies.items()}


def table(result: dict, key: str = "kinds") -> list[str]:
    lines = [f"{'comparison':>10} {'runs':>5} {'regressed [95% CI]':>24} {'any inconclusive [95% CI]':>28} "
             f"{'median wall s':>14}"]
    for kind, row in result[key].items():
        def cell(rate: dict) -> str:
            return "n/a" if rate["rate"] is None else f"{rate['rate']:.2f} [{rate['low']:.2f}, {rate['high']:.2f}]"
        wall = row["median_wall_s"]
        lines.append(f"{kind:>10} {row['runs']:>5} {cell(row['regressed']):>24} {cell(row['any_inconclusive']):>28} "
                     f"{'n/a' if wall is None else f'{wall:.0f}':>14}")
    return lines


# --gate-calibration-ab: the same-session A/B gate against an unchanged REF and against a slower commit.
AB_SLOWDOWN_PCT = 5.0


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          timeout=120).stdout.strip()


def slow_commit_clone(work: Path, percent: float = AB_SLOWDOWN_PCT, source: Path = ROOT) -> Path:
    """A clone of ``source``'s HEAD with one commit on top that makes every training step ``percent``
    longer (the change a same-session A/B run must catch)."""
    repo = work / "repo"
    subprocess.run(["git", "clone", "--quiet", str(source), str(repo)], check=True, timeout=300)
    train = repo / "lanemodel" / "training" / "train.py"
    text = train.read_text()
    slower = (("        if cfg.step_slowdown_pct:\n",
               "        if cfg.step_slowdown_pct or True:   # this commit makes every step slower\n"),
              ("cfg.step_slowdown_pct / 100.0", f"(cfg.step_slowdown_pct + {percent}) / 100.0"))
    for old, new in slower:
        if text.count(old) != 1:
            raise RuntimeError(f"cannot make the slow commit: {train} no longer contains {old!r} once")
        text = text.replace(old, new)
    train.write_text(text)
    _git(repo, "-c", "user.name=calibration", "-c", "user.email=calibration@localhost", "commit", "-qam",
         f"every training step {percent:g} % slower")
    return repo


def calibrate_ab(opts: SweepSettings, runs: int, work: Path, note: Callable[[str], None] = print,
                 seed: int = 0, progress_file: Path | None = None) -> dict:
    """``2 * runs`` A/A sessions (--scaling-ab HEAD on unchanged code) and ``runs`` sessions of the slow
    commit against its parent (--scaling-ab HEAD~1), in a random order, each its own pytest session."""
    repo = slow_commit_clone(work)
    checkout = {"A/A": _git(repo, "rev-parse", "HEAD~1"), "slow": _git(repo, "rev-parse", "HEAD")}
    kinds = ["A/A"] * (2 * runs) + [f"+{AB_SLOWDOWN_PCT:g}% commit"] * runs
    random.Random(seed).shuffle(kinds)
    args = [*session_args(opts), "--scaling-ab-rounds", str(opts.ab.rounds),
            "--scaling-ab-max-slowdown", str(opts.ab.max_slowdown)]
    tallies = {kind: Tally() for kind in dict.fromkeys(sorted(kinds))}
    result: dict = {}
    for index, kind in enumerate(kinds):
        slow = kind != "A/A"
        _git(repo, "checkout", "-q", "--detach", checkout["slow" if slow else "A/A"])
        saved, wall = run_session(work, f"ab{index}", [*args, "--scaling-ab", "HEAD~1" if slow else "HEAD"],
                                  project=repo)
        note(f"{index + 1}/{len(kinds)} {kind:>12}: {tallies[kind].add_session(saved, wall)} ({wall:.0f} s)")
        result = {"runs": index + 1, "settings": asdict(opts), "kinds": {k: t.summary() for k, t in tallies.items()}}
        if progress_file is not None:
            progress_file.write_text(json.dumps(result, indent=1))
    return result
