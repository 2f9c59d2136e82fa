"""REPORT.md of a lever study (``--levers``): "What to change", from the study's JSON (``lanemodel.session.levers``).

Per world size, every lever value against the default: step-time ratio with its interval, throughput, the
all-reduce's time and bytes (beside the bytes and ratio the parts model predicted), the loss difference at
equal samples seen with its interval, and a verdict; then the recommended combination re-measured beside
the product of its single-lever ratios, and the fastest (world size, configuration) that trains the same.
"""
from __future__ import annotations

from pathlib import Path

from lanemodel.analysis.leverstats import ALPHA, SPEED_CONFIDENCE
from lanemodel.outputs.report import workload_title

MB = 1e6


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _interval(row: dict, key: str, low_high: str, digits: int = 3, percent: bool = False) -> str:
    if row.get(key) is None:
        return "–"
    scale, unit = (100.0, " %") if percent else (1.0, "")
    low, high = row[low_high]
    sign = "+" if percent else ""
    return (f"{row[key] * scale:{sign}.{digits}f}{unit} [{low * scale:{sign}.{digits}f}, "
            f"{high * scale:{sign}.{digits}f}]")


def _mb(value) -> str:
    return "–" if value is None else f"{value / MB:.2f}"


def _row_cells(row: dict) -> list[str]:
    verdict = row["verdict"] if not row.get("errors") else f"{row['verdict']} ({'; '.join(row['errors'])})"
    return [f"`{row['label']}`", _interval(row, "ratio", "ratio_interval"), _num(row.get("predicted_ratio")),
            _num(row.get("samples_per_second"), 1), _num(row.get("comm_time")),
            f"{_mb(row.get('comm_bytes'))} ({_mb(row.get('predicted_bytes'))})",
            _interval(row, "loss_difference", "loss_interval", 2, percent=True), f"**{verdict}**",
            str(row.get("blocks", 0))]


HEADER = ("| value | step-time ratio [95 %] | predicted ratio | samples/s | all-reduce s/step | MB sent/step "
          "(predicted) | loss difference [90 %] | verdict | blocks |")


def world_size_lines(ws: str, study: dict, cores: int | None) -> list[str]:
    over = cores is not None and int(ws) > cores
    lines = [f"### {ws} processes" + (f" (oversubscribed: more processes than the {cores} cores)" if over else ""),
             ""]
    default = study.get("default") or {}
    if default:
        lines.append(f"Default: median step {default['median_step_time']:.3f} s, "
                     f"{default['samples_per_second']:.1f} samples/s, all-reduce {_num(default.get('comm_time'))} s "
                     f"per step ({_num(default.get('comm_exposed_time'))} s exposed), "
                     f"{_mb(default.get('comm_bytes'))} MB sent per rank per step, loss {default['loss']:.4f} "
                     f"(mean over the second half of the steps), {default['launches']} launches.")
    for error in study.get("default_errors", []):
        lines.append(f"- default launch failed, {error}: its block is left out of every pair")
    lines += ["", HEADER, "|" + "---|" * 9]
    lines += ["| " + " | ".join(_row_cells(row)) + " |" for row in study.get("rows", [])]
    lines.append("")
    rec = study.get("recommended")
    if rec is None:
        lines.append("Recommended: the default (no value was faster and trained the same here).")
    else:
        lines.append(f"Recommended: `{rec['label']}`, re-measured against the default in {rec.get('blocks', 0)} "
                     f"blocks of its own: step-time ratio {_interval(rec, 'ratio', 'ratio_interval')} "
                     f"({_num(rec.get('samples_per_second'), 1)} samples/s) against "
                     f"{_num(rec.get('product_of_single_ratios'))}, the product of its single-lever ratios; loss "
                     f"difference {_interval(rec, 'loss_difference', 'loss_interval', 2, percent=True)}: "
                     f"**{rec['verdict']}**.")
    return lines + [""]


def lever_report(study: dict, config: dict) -> str:
    cores = config.get("cores_available")
    link = f", {study['nodes']} emulated nodes at {study['link_gbit']:g} Gbit/s" if study.get("nodes", 1) > 1 else ""
    lines = ["# DDP lever study", "",
             f"{config.get('cpu_model', '?')}, {cores} cores, torch {config.get('torch', '?')}; "
             f"{workload_title(config)}, {study['steps']} steps per launch, global batch {study['global_batch']}, "
             f"threads {study['policy']}{link}; levers `{study['spec']}`; launches took "
             f"{study['launch_seconds']:.0f} s.", "", "## What to change", ""]
    for ws, found in study["world_sizes"].items():
        lines += world_size_lines(ws, found, cores)
    best = study.get("fastest")
    lines += ["### The sweet spot at equal training quality", ""]
    if best:
        lines.append(f"The fastest (world size, configuration) here that trains as the default does: "
                     f"**{best['world_size']} processes, {best['configuration']}**, "
                     f"{best['samples_per_second']:.1f} samples/s (among the default, every value that was faster and "
                     f"trained the same, and each re-measured combination that did: samples per second at the "
                     f"same global batch).")
    else:
        lines.append("No configuration finished.")
    lines += ["", "### How it was measured", "",
              f"- Blocks: at each world size, {study['blocks']} blocks, each one launch of the default and one of "
              f"every value in a drawn order, all from the block's seed (same initial weights, same samples in the "
              f"same order); the step-time ratio is a paired t test on the launches' log medians, "
              f"{SPEED_CONFIDENCE:.0%} interval: **faster** or **slower** when it excludes 1.",
              f"- Loss: each launch's mean loss over the second half of its steps, value/default - 1 per block; "
              f"**trains the same** when the {1 - 2 * ALPHA:.0%} interval of the mean lies inside "
              f"+-{study['loss_tolerance']:.1%} (TOST at {ALPHA:.0%}); **trains worse** when it lies above 0 "
              f"and the estimate beyond the tolerance.",
              "- Predicted: MB sent from the gradient's shapes (fp16/bf16 half, PowerSGD its factors and the "
              "tensors it leaves whole); the ratio from the default's exposed all-reduce scaled by that, the rest "
              "of the step unchanged (compression's own CPU left out), for the hooks only.",
              "- Recommended: per lever the fastest value that was faster and trained the same, combined, then "
              "measured against the default in blocks of its own (levers interact)."]
    return "\n".join(lines) + "\n"


def write_lever_report(study: dict, config: dict, results_dir: Path) -> Path:
    path = Path(results_dir) / "REPORT.md"
    path.write_text(lever_report(study, config))
    return path
