"""The suite's work between pytest and the engine: launches, files in the results dir, conclusions."""
from __future__ import annotations

import json
import shutil
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.analysis import PolicyAnalysis, analyse, analysis_json
from benchmarks.breakdown import breakdown, run_step_times
from benchmarks.gate import GateVerdict, compare, verdicts_json
from benchmarks.options import SuiteOptions
from benchmarks.plots import plot_all
from benchmarks.scaling import ScalingPoint
from benchmarks.stats import Interval

if TYPE_CHECKING:
    from lanemodel.config import TrainConfig

SYNTH_FRAMES = 64
SYNTH_SEED = 0


def run_config(opts: SuiteOptions) -> dict:
    """The run's configuration and machine, saved with the results and checked before comparing."""
    from lanemodel.machine import machine_info

    machine = machine_info()
    return {"cpu_model": machine["cpu_model"], "cores_available": machine["cores_available"],
            "physical_cores": machine["physical_cores"], "torch": machine["torch"], "preset": opts.preset,
            "scaling": opts.scaling, "spawn": opts.spawn, "global_batch": opts.global_batch, "steps": opts.steps,
            "drop_warmup": opts.drop_warmup, "threads": list(opts.threads), "world_sizes": list(opts.world_sizes),
            "rounds": opts.rounds, "inject_comm_delay_ms": opts.inject_comm_delay_ms}


def launch_name(policy: str, world_size: int, launch: int) -> str:
    return f"{policy}_ws{world_size}_launch{launch}"


def metrics_path(results_dir: Path, name: str) -> Path:
    return results_dir / f"metrics_{name}.json"


def prepare_results_dir(opts: SuiteOptions) -> Path:
    """Clear the previous run's artefacts (the report must describe this run only); make the data once."""
    from lanemodel.synth import write_synthetic_dataset

    out = opts.results_dir
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("metrics_*.json"):
        old.unlink()
    for sub in ("plots", "runs"):
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / "REPORT.md").unlink(missing_ok=True)
    data = out / "data"
    if not (data / "label_data.json").exists():
        write_synthetic_dataset(data, frames=SYNTH_FRAMES, seed=SYNTH_SEED)
    return data


def train_config(opts: SuiteOptions, data_dir: Path, **overrides) -> "TrainConfig":
    """The training every launch of this session runs, with per-measurement overrides."""
    from lanemodel.config import TrainConfig

    settings = dict(data_dir=str(data_dir), preset=opts.preset, steps=opts.steps, scaling=opts.scaling,
                    global_batch=opts.global_batch, rank_batch=opts.global_batch,
                    comm_delay_ms=opts.inject_comm_delay_ms)
    return TrainConfig(**{**settings, **overrides})


def run_one_launch(opts: SuiteOptions, cfg: "TrainConfig", policy: str, world_size: int,
                   name: str, spawn: str | None = None) -> tuple[dict, str | None]:
    """One launch through the engine; its metrics file is written even when the launch failed."""
    from lanemodel.sweep import SweepError, measure_world_size
    from lanemodel.threads import parse_policy

    error = None
    try:
        doc = measure_world_size(cfg, world_size, parse_policy(policy), opts.results_dir / "runs" / name,
                                 opts.launch_timeout, opts.drop_warmup, spawn=spawn or opts.spawn)
    except SweepError as exc:
        doc, error = exc.partial, str(exc)
    metrics_path(opts.results_dir, name).write_text(json.dumps(doc, indent=1))
    return doc, error


def launch_summary(docs: list[dict]) -> dict:
    """What a benchmark's extra_info carries: enough to gate against it later without the raw files."""
    first = docs[0]
    step_times = [run_step_times(d).tolist() for d in docs]
    pooled = [t for launch in step_times for t in launch]
    median = statistics.median(pooled)
    parts = breakdown(docs)
    return {
        "world_size": first["config"]["world_size"], "threads": first["config"]["threads"],
        "preset": first["config"]["preset"], "scaling": first["config"]["scaling"],
        "global_batch_size": first["config"]["global_batch_size"],
        "oversubscribed": first["env"]["oversubscribed"], "warmup_steps_dropped": first["warmup_steps_dropped"],
        "inject_comm_delay_ms": first["config"]["comm_delay_ms"],
        "median_step_time": median, "samples_per_second": first["config"]["global_batch_size"] / median,
        "breakdown_shares": asdict(parts.shares()),
        "launch_to_first_step": statistics.median(d["launch"]["launch_to_first_step"] for d in docs),
        "step_times": step_times,
    }


def points_from_json(curve: list[dict]) -> list[ScalingPoint]:
    return [ScalingPoint(p["world_size"], Interval(**p["step_time"]), Interval(**p["speedup"]),
                         Interval(**p["efficiency"]), p["samples_per_second"], p["oversubscribed"]) for p in curve]


@dataclass
class SuiteOutcome:
    config: dict
    analysis: dict[str, PolicyAnalysis]
    verdicts: list[GateVerdict]
    baseline_name: str
    files: dict[str, str] = field(default_factory=dict)

    @property
    def regressed(self) -> list[GateVerdict]:
        return [v for v in self.verdicts if v.verdict == "regressed"]

    def saved_json(self) -> dict:
        return {"config": self.config, "analysis": analysis_json(self.analysis),
                "gate": verdicts_json(self.verdicts, self.baseline_name) if self.baseline_name else None,
                "files": self.files}

    def summary_lines(self) -> list[str]:
        lines = []
        for policy, a in self.analysis.items():
            lines.append(f"threads={policy}  preset={self.config['preset']}  scaling={self.config['scaling']}  "
                         f"global batch={self.config['global_batch']}  cores={self.config['cores_available']}")
            lines.append(f"{'ranks':>5} {'step s':>8} {'95% CI':>17} {'samples/s':>10} {'speedup':>8} "
                         f"{'effic.':>7} {'comm s':>7}  note")
            for p in a.points:
                comm = a.comm_seconds.get(p.world_size)
                note = "oversubscribed" if p.oversubscribed else ""
                note += "  <- fastest" if p.world_size == a.fastest_world_size else ""
                lines.append(f"{p.world_size:>5} {p.step_time.point:>8.3f} [{p.step_time.low:>7.3f},{p.step_time.high:>7.3f}]"
                             f" {p.samples_per_second:>10.1f} {p.speedup.point:>8.2f} {p.efficiency.point:>7.2f} "
                             f"{comm if comm is not None else float('nan'):>7.3f}  {note}")
        if self.baseline_name:
            lines.append(f"regression gate against {self.baseline_name}:")
            lines += ["  " + v.describe(self.baseline_name) for v in self.verdicts]
            lines.append(f"  {len(self.regressed)} regressed" if self.regressed else "  no regression")
        lines += [f"{name}: {path}" for name, path in self.files.items()]
        return lines


def conclude(docs: dict[tuple[str, int], list[dict]], opts: SuiteOptions, current_benchmarks: list[dict],
             baseline: dict | None, baseline_name: str) -> SuiteOutcome:
    """Analysis, gate, plots and report from everything the session measured."""
    from benchmarks.report import write_report

    analysis = analyse(docs)
    verdicts = (compare(current_benchmarks, baseline, opts.max_slowdown, opts.max_efficiency_drop)
                if baseline is not None else [])
    outcome = SuiteOutcome(run_config(opts), analysis, verdicts, baseline_name)
    baseline_curves = (baseline or {}).get("scaling", {}).get("analysis", {})
    for policy, a in analysis.items():
        label = f"{opts.preset}, threads={policy}"
        base = points_from_json(baseline_curves[policy]["curve"]) if policy in baseline_curves else None
        policy_docs = {ws: launches for (p, ws), launches in docs.items() if p == policy}
        for name, path in plot_all(a.points, policy_docs, opts.results_dir / "plots" / policy, base, label).items():
            outcome.files[f"plot {policy} {name}"] = str(path)
    outcome.files["report"] = str(write_report(outcome, docs, opts.results_dir))
    return outcome
