"""What one suite session concluded: the analysed curve per thread policy, thread contention and the gate.

The outputs (report, plots, terminal table) only format this object; the saved run stores
``saved_json()`` under its ``scaling`` key.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lanemodel.analysis.claims import Probes, probes_from
from lanemodel.analysis.costmodel import cores_in_use
from lanemodel.analysis.curve import ContentionRow, PolicyAnalysis, analyse, analysis_json, thread_contention
from lanemodel.analysis.gate import GateResult, GateSettings, GateVerdict, verdicts_json
from lanemodel.analysis.partsmodel import measured_parts, median_of, prediction_rows, ring_at_link_rate
from lanemodel.records import (
    SCHEMA_VERSION,
    Launch,
    LaunchSeries,
    RunConfig,
    SchemaError,
    by_policy,
    finished_kept_records,
    load_launch,
)


@dataclass(frozen=True)
class Comparison:
    """The other side of a gated session: its short name ("main@1a2b3c4"), what it is called beside this change
    ("REF", "baseline", "history"), the options that compare with it again, and its curve in saved form
    (analysis_json; empty for a history of runs)."""

    against: str
    side: str
    flag: str
    analysis: dict = field(default_factory=dict)


@dataclass
class SuiteOutcome:
    config: dict
    analysis: dict[str, PolicyAnalysis]
    gate: GateResult | None
    gate_settings: GateSettings
    baseline_name: str
    contention: list[ContentionRow] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    extra_launches: list[str] = field(default_factory=list)   # which world sizes got more launches, and why
    probes: Probes = field(default_factory=Probes)             # rank alone per world size, memory bandwidth
    plan: dict | None = None                   # launchplan.LaunchPlan.as_json() when the session budget planned
    partial: list[str] = field(default_factory=list)          # why the session measured less than it set out to
    comparison: Comparison | None = None       # what the gate compared with, for the summary and the plots
    session_rss_mb: float | None = None        # the session process's resident memory beside its ranks
    session_private_mb: float | None = None    # the part of it no other process shares

    @property
    def against(self) -> str:
        return self.comparison.against if self.comparison else self.baseline_name

    @property
    def side_name(self) -> str:
        return self.comparison.side if self.comparison else "baseline"

    @property
    def reference_analysis(self) -> dict:
        return self.comparison.analysis if self.comparison else {}

    @property
    def verdicts(self) -> list[GateVerdict]:
        return self.gate.verdicts if self.gate else []

    @property
    def gate_notes(self) -> list[str]:
        return self.gate.notes if self.gate else []

    @property
    def regressed(self) -> list[GateVerdict]:
        return self.gate.regressed if self.gate else []

    def saved_json(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "config": self.config, "analysis": analysis_json(self.analysis),
                "contention": [asdict(row) for row in self.contention],
                "gate": (verdicts_json(self.gate, self.baseline_name, self.gate_settings)
                         if self.gate is not None else None),
                "extra_launches": self.extra_launches, "plan": self.plan, "partial": self.partial,
                "session_rss_mb": self.session_rss_mb, "session_private_mb": self.session_private_mb,
                "probes": {"rank_alone": {policy: {str(ws): t for ws, t in by_ws.items()}
                                          for policy, by_ws in self.probes.rank_alone.items()},
                           "rank_alone_threads": {policy: {str(ws): k for ws, k in by_ws.items()}
                                                  for policy, by_ws in self.probes.rank_threads.items()},
                           "bandwidth": {str(k): v for k, v in self.probes.bandwidth.items()},
                           "rank_alone_cpu": {policy: {str(ws): t for ws, t in by_ws.items()}
                                              for policy, by_ws in self.probes.rank_alone_cpu.items()},
                           "allreduce": {policy: {str(ws): r for ws, r in by_ws.items()}
                                         for policy, by_ws in self.probes.allreduce.items()}},
                "files": self.files}


def summarise_session(series: LaunchSeries, config: dict, gate: GateResult | None, settings: GateSettings,
                      baseline_name: str, extra_launches: list[str] | None = None,
                      n_boot: int = 2000, probes: Probes | None = None) -> SuiteOutcome:
    """Analyse everything a session measured (failed launches are left out of the statistics)."""
    probes = probes or Probes()
    analysis = analyse(series, n_boot)
    grouped = by_policy(series)
    for policy, a in analysis.items():
        a.parts, a.parts_note = parts_predictions(a, grouped[policy], probes)
    return SuiteOutcome(config, analysis, gate, settings, baseline_name,
                        thread_contention(grouped, n_boot), extra_launches=list(extra_launches or []),
                        probes=probes)


def parts_predictions(a: PolicyAnalysis, docs: dict[int, list[Launch]], probes: Probes) -> tuple[list[dict], str]:
    """The model from measured parts for one policy: its leave-one-out predictions, or why there are none."""
    cores = docs[min(docs)][0].env.get("cores_available") or 1
    parts = {}
    for ws, launches in docs.items():
        if ws == 1:       # one rank is its own rank-alone probe
            wall, cpu = a.point_at(1).step_time.point, median_of(finished_kept_records(launches), "cpu_time")
        else:
            wall = probes.rank_alone.get(a.policy, {}).get(ws)
            cpu = probes.rank_alone_cpu.get(a.policy, {}).get(ws)
        found = measured_parts(ws, cores_in_use(ws, cores, a.threads), wall, cpu,
                               probes.allreduce.get(a.policy, {}).get(ws))
        if found is not None:
            parts[ws] = found
    if len(parts) < 2:
        return [], ("needs the probes (--probes 1: a rank alone and the all-reduce microbenchmark) at two or more "
                    "world sizes")
    busy = {ws: median_of(finished_kept_records(docs[ws]), "comm_busy_time") for ws in parts}
    benches = probes.allreduce.get(a.policy, {})
    ring = {ws: ring_at_link_rate(ws, sum(bench["buckets"]), bench["link_gbit"]) for ws, bench in benches.items()
            if (bench.get("nodes") or 1) > 1 and bench.get("link_gbit")}
    return prediction_rows(parts, {ws: a.point_at(ws).step_time.point for ws in parts}, busy, ring), ""


PROBE_DIR = "probes"      # where the suite keeps the cause probes of a results directory


def _probe_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SchemaError(f"probe file {path} is not readable JSON: {exc}") from None


def probes_in(results_dir: str | Path) -> Probes:
    """The cause probes a results directory holds (<dir>/probes): the rank-alone launches, the bandwidth curve
    and the all-reduce microbenchmarks; empty when there are none. An unreadable file is a SchemaError."""
    found = Path(results_dir) / PROBE_DIR
    rank_alone: LaunchSeries = {}
    for path in sorted(found.glob("metrics_*_alone_ws*.json")):
        launch = load_launch(path)
        rank_alone.setdefault((launch.policy, launch.config["probe"]["for_world_size"]), []).append(launch)
    bandwidth = _probe_json(found / "bandwidth.json") if (found / "bandwidth.json").exists() else None
    allreduce = {}
    for path in sorted(found.glob("allreduce_*_ws*.json")):
        policy, _, size = path.stem.removeprefix("allreduce_").rpartition("_ws")
        allreduce[(policy, int(size))] = _probe_json(path)
    return probes_from(rank_alone, bandwidth, allreduce)


def config_of(series: LaunchSeries) -> RunConfig:
    """The run configuration a results directory implies, read from its launches (for rebuilding a report)."""
    launches = [launch for found in series.values() for launch in found]
    first = launches[0]
    return RunConfig(cpu_model=first.env.get("cpu_model"), cores_available=first.env.get("cores_available"),
                     cores_source=first.env.get("cores_source"), memory_source=first.env.get("memory_source"),
                     physical_cores=first.env.get("physical_cores"), logical_cores=first.env.get("logical_cores"),
                     torch=first.env.get("torch"), preset=first.config.get("preset"),
                     scaling=first.config.get("scaling"), spawn=first.launch.get("spawn"),
                     launcher=first.launch.get("launcher", "embedded"),
                     nodes=(first.launch.get("nodes") or {}).get("nodes", 1),
                     link_gbit=(first.launch.get("nodes") or {}).get("link_gbit"),
                     global_batch=first.config.get("global_batch"), steps=first.config.get("steps"),
                     drop_warmup=first.warmup_steps_dropped, threads=tuple(sorted({policy for policy, _ in series})),
                     world_sizes=tuple(sorted({ws for _, ws in series})),
                     rounds=max(len(found) for found in series.values()),
                     inject_comm_delay_ms=first.config.get("comm_delay_ms", 0.0),
                     inject_step_slowdown=first.config.get("step_slowdown_pct", 0.0))
