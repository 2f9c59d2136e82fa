"""The terminal summary of a suite session: the curve per thread policy, then the gate's verdicts."""
from __future__ import annotations

import math
from pathlib import Path

from lanemodel.analysis.launchstats import FEW_LAUNCHES
from lanemodel.analysis.outcome import SuiteOutcome
from lanemodel.outputs.report import workload_title


def summary_lines(outcome: SuiteOutcome) -> list[str]:
    cfg = outcome.config
    lines = []
    for policy, a in outcome.analysis.items():
        lines.append(f"workload={workload_title(cfg)}  threads={policy}  scaling={cfg['scaling']}  "
                     f"global batch={cfg['global_batch']}  cores={cfg['cores_available']}  cpu={cfg['cpu_model']}")
        lines.append(f"{'ranks':>5} {'launches':>8} {'+-':>6} {'step s':>8} {'95% CI':>17} {'samples/s':>10} "
                     f"{'speedup':>8} {'effic.':>7} {'comm s':>7}  note")
        for p in a.points:
            comm = a.comm_seconds.get(p.world_size)
            count, precision = a.launch_counts.get(p.world_size, 0), a.precision.get(p.world_size, math.inf)
            note = "oversubscribed" if p.oversubscribed else ""
            note += "  few launches" if count < FEW_LAUNCHES else ""
            note += "  <- fastest" if p.world_size == a.fastest_world_size else ""
            interval = f"[{p.step_time.low:>7.3f},{p.step_time.high:>7.3f}]"
            spread = f"{precision:.1%}" if math.isfinite(precision) else "n/a"
            lines.append(f"{p.world_size:>5} {count:>8} {spread:>6} {p.step_time.point:>8.3f} {interval}"
                         f" {p.samples_per_second:>10.1f} {p.speedup.point:>8.2f} {p.efficiency.point:>7.2f} "
                         f"{comm if comm is not None else float('nan'):>7.3f}  {note}")
    if outcome.baseline_name:
        lines.append(f"regression gate against {outcome.baseline_name}:")
        lines += ["  " + v.describe() for v in outcome.verdicts]
        lines += ["  " + note for note in outcome.gate_notes + outcome.extra_launches]
        if outcome.gate is not None and outcome.gate.refused:
            lines.append(f"  NOT COMPARED: {outcome.gate.refused}")
        elif outcome.regressed:
            lines.append(f"  {len(outcome.regressed)} regressed")
        else:
            undecided = sum(v.verdict == "inconclusive" for v in outcome.verdicts)
            lines.append("  no regression" + (f" ({undecided} inconclusive)" if undecided else ""))
    if outcome.plan and not outcome.baseline_name:
        lines += outcome.extra_launches
        lines.append(f"launches and probes took {outcome.plan.get('session_s', 0):.0f} s of the "
                     f"{outcome.plan['budget_s']:g} s session budget; +-: the precision of each median")
    if outcome.partial:
        lines.append("PARTIAL RUN: " + "; ".join(outcome.partial))
    lines += [f"{name}: {path}" for name, path in outcome.files.items()]
    return lines


def performance_lines(benchmarks: list[dict]) -> list[str]:
    """The performance group's measured ratios, their intervals and targets (from each extra_info)."""
    lines = []
    for bench in benchmarks:
        info = bench.get("extra_info", {})
        if "ratio" in info:
            measured = f"ratio {info['ratio']:.3f} [{info['ratio_low']:.3f}, {info['ratio_high']:.3f}]"
        elif "launch_to_first_step_s" in info:
            measured = f"launch to first step {info['launch_to_first_step_s']:.2f} s"
        else:
            continue
        target = info.get("target", info.get("target_s"))
        verdict = "" if target is None else f", target {target:g}: {'met' if info.get('target_met') else 'NOT met'}"
        extra = ""
        if "data_time_share" in info:
            extra = (f"; data loading {info['data_time_share']:.1%} of the step, target "
                     f"{info['data_time_target']:.0%}: {'met' if info['data_time_target_met'] else 'NOT met'}")
        lines.append(f"{bench['name']}: {measured}{verdict}{extra}")
    return lines


def lever_lines(study: dict, results_dir: Path) -> list[str]:
    """The lever study for the terminal: each value's step-time ratio and loss difference with its verdict, the
    fastest configuration that trains the same, and where the report is."""
    lines = []
    for ws, sizes in study["world_sizes"].items():
        for row in sizes["rows"] + ([sizes["recommended"]] if sizes["recommended"] else []):
            ratio = f"{row['ratio']:.3f} [{row['ratio_interval'][0]:.3f}, {row['ratio_interval'][1]:.3f}]" \
                if row.get("ratio") is not None else "–"
            loss = f"{row['loss_difference']:+.2%}" if row.get("loss_difference") is not None else "–"
            lines.append(f"ws{ws} {row['label']}: step-time ratio {ratio}, loss {loss} -> {row['verdict']}")
    if study["fastest"]:
        best = study["fastest"]
        lines.append(f"fastest that trains the same: {best['world_size']} processes, {best['configuration']} "
                     f"({best['samples_per_second']:.1f} samples/s)")
    lines.append(f"report: {results_dir / 'REPORT.md'}")
    return lines
