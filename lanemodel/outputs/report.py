"""results/REPORT.md: what the run found about DDP scaling on this machine, every claim a measured number.

Rendering is pure (report_markdown returns text); write_report only saves it. Seconds print with 3
decimals, samples/s with 1, ratios with 2; every interval is the 95% two-level bootstrap interval.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from lanemodel.analysis.curve import ModelReport, PolicyAnalysis
from lanemodel.analysis.gate import GateVerdict
from lanemodel.analysis.outcome import SuiteOutcome
from lanemodel.analysis.partsmodel import holdout
from lanemodel.analysis.scaling import CAUSES, ScalingPoint
from lanemodel.analysis.stats import Interval
from lanemodel.outputs.session_notes import fmt_precision, launches_section, partial_section
from lanemodel.records import LaunchSeries, launch_name, metrics_path
from lanemodel.settings import LANE_WORKLOAD

NA = "n/a"
CAUSE_LABELS = {"compute": "compute", "optimizer": "optimizer (repeated on every rank)",
                "communication": "exposed communication", "data": "data loading",
                "wait": "waiting on the slowest rank", "other": "other"}
PLOT_TITLES = {"elapsed": "Elapsed time vs processes", "speedup": "Speedup vs processes",
               "efficiency": "Parallel efficiency vs processes", "breakdown": "Where the step time goes",
               "step_time": "Step time over steps", "loss": "Loss over steps"}
METRIC_LABELS = {"step_time_ratio": "median step time, current / baseline",
                 "efficiency_ratio": "parallel efficiency, current / baseline"}


# --- number formatting -----------------------------------------------------------------


def fmt_seconds(value: float | None) -> str:
    return NA if value is None else f"{value:.3f}"


def fmt_signed_seconds(value: float) -> str:
    """Explicit sign; a value that rounds to zero prints as +0.000, never -0.000."""
    return f"{round(value, 3) + 0.0:+.3f}"


def fmt_rate(value: float) -> str:
    return f"{value:.1f}"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}"


def fmt_fraction(value: float | None) -> str:
    """Fractions that are usually small (Karp-Flatt) keep 3 decimals so they do not round to 0."""
    return NA if value is None else f"{value:.3f}"


def fmt_percent(fraction: float | None) -> str:
    return NA if fraction is None else f"{100.0 * fraction:.1f}%"


def fmt_interval(interval: Interval, fmt: Callable[[float], str]) -> str:
    return f"{fmt(interval.point)} [{fmt(interval.low)}, {fmt(interval.high)}]"


def processes(count: int) -> str:
    return f"{count} process" if count == 1 else f"{count} processes"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


# --- sections --------------------------------------------------------------------------


LANE_TITLE = "the TuSimple lane detector ({preset})"


def workload_title(cfg: dict) -> str:
    """The workload as a reader knows it: its own name, or the lane detector's for runs saved before workloads."""
    return cfg.get("workload_name") or LANE_TITLE.format(preset=cfg.get("preset"))


def workload_lines(cfg: dict) -> list[str]:
    """What was trained and on what: the workload, its size, its data (cached or decoded at every step)."""
    size = f", {cfg['parameters'] / 1e6:.2f} M parameters" if cfg.get("parameters") else ""
    spec = f" (`{cfg['workload']}`)" if cfg.get("workload") else ""
    lines = [f"- workload: {workload_title(cfg)}{spec}{size}"]
    if cfg.get("data") or cfg.get("data_items"):
        items = f"{cfg['data_items']} items" if cfg.get("data_items") is not None else "items not recorded"
        lines.append(f"- data: {items}" + (f", {cfg['data']}" if cfg.get("data") else ""))
    return lines


def answer_section(outcome: SuiteOutcome) -> list[str]:
    cfg = outcome.config
    lines = [f"# DDP scaling of {workload_title(cfg)} on {cfg['cpu_model']}", ""]
    if not outcome.analysis:
        return lines + ["No launch finished, so this run measured nothing to report."]
    sentences = []
    for policy, a in outcome.analysis.items():
        best = a.point_at(a.fastest_world_size)
        reference = a.points[0]
        gain = ("" if best is reference else
                f", speedup {fmt_interval(best.speedup, fmt_ratio)} over {processes(reference.world_size)}")
        sentences.append(f"With **{policy}** threads the fastest was **{processes(best.world_size)}**: "
                         f"{fmt_rate(best.samples_per_second)} samples/s{gain}.")
        sentences.append(helped_sentence(a, best, reference))
    if len(outcome.analysis) > 1:
        policy, top = max(((policy, a.point_at(a.fastest_world_size)) for policy, a in outcome.analysis.items()),
                          key=lambda item: item[1].samples_per_second)
        sentences.append(f"The highest throughput overall was {fmt_rate(top.samples_per_second)} samples/s "
                         f"(`{policy}` threads, {processes(top.world_size)}).")
    return lines + [" ".join(sentences) + " Intervals are 95% bootstrap intervals over launches and steps."]


def helped_sentence(a: PolicyAnalysis, best: ScalingPoint, reference: ScalingPoint) -> str:
    """Whether more processes helped, judged by the speedup interval rather than the point alone."""
    if len(a.points) == 1:
        return "Only one world size was measured, so there is nothing to compare."
    if best.world_size == reference.world_size:
        verdict = f"More processes did not help: no larger world size beat {processes(reference.world_size)}."
    elif best.speedup.low > 1.0:
        verdict = "More processes helped: the whole speedup interval lies above 1."
    else:
        verdict = "The gain is within the noise: the speedup interval includes 1."
    largest = a.points[-1]
    if largest.world_size > best.world_size:
        verdict += (f" At {processes(largest.world_size)} throughput was "
                    f"{fmt_rate(largest.samples_per_second)} samples/s.")
    return verdict


def policy_meaning(policy: str) -> str:
    if policy == "tuned":
        return "floor(cores / N) threads per rank, each rank pinned to its own cores"
    if policy == "naive":
        return "library defaults: every rank starts as many threads as the cores it sees, unpinned"
    return f"{policy} threads per rank, unpinned"


def launches_per_world_size(outcome: SuiteOutcome) -> str:
    """What each world size was measured with (a planned session gives them different counts)."""
    said = []
    for policy, a in outcome.analysis.items():
        sizes = sorted(a.launch_counts)
        said.append(" / ".join(str(a.launch_counts[ws]) for ws in sizes) + " at "
                    + " / ".join(map(str, sizes)) + " processes" + (f" (`{policy}`)" if len(outcome.analysis) > 1
                                                                     else ""))
    return "; ".join(said) or str(outcome.config.get("rounds"))


def machine_section(outcome: SuiteOutcome) -> list[str]:
    cfg = outcome.config
    logical = cfg.get("logical_cores")
    batch = (f"global batch {cfg['global_batch']} (strong scaling: the same at every world size)"
             if cfg["scaling"] == "strong" else
             f"per-rank batch {cfg['global_batch']} (weak scaling: the global batch grows with N)")
    lines = ["## Machine and configuration", "",
             f"- CPU: {cfg['cpu_model']}; {cfg['physical_cores']} physical cores, "
             f"{logical if logical is not None else NA} logical, {cfg['cores_available']} available to the run"
             + (f" ({cfg['cores_source']})" if cfg.get("cores_source") else ""),
             *([f"- memory: {cfg['memory_source']}"] if cfg.get("memory_source") else []),
             *([f"- the session process (not a rank): up to {outcome.session_rss_mb / 1024:.2f} GiB resident as its "
                f"launches ended, {(outcome.session_private_mb or 0) / 1024:.2f} GiB of it its own (the rest: pages of "
                f"libraries its ranks map too)"] if outcome.session_rss_mb else []),
             *workload_lines(cfg),
             f"- torch {cfg['torch']}, gloo backend"
             + (f", model preset `{cfg['preset']}`" if cfg.get("workload", LANE_WORKLOAD) == LANE_WORKLOAD else ""),
             f"- {batch}",
             f"- {cfg['steps']} steps per launch; warm-up steps left out of the statistics: {cfg['drop_warmup']}",
             f"- launches per world size: {launches_per_world_size(outcome)} (launches, not steps, are the "
             f"independent samples)",
             "- thread policies:"]
    lines += [f"  - `{policy}`: {policy_meaning(policy)}" for policy in cfg["threads"]]
    if cfg["inject_comm_delay_ms"]:
        lines.append(f"- injected communication delay: {cfg['inject_comm_delay_ms']:g} ms added to every "
                     "cross-rank all-reduce, so this run is deliberately slower")
    if cfg.get("inject_step_slowdown"):
        lines.append(f"- injected step slowdown: every rank's every step made {cfg['inject_step_slowdown']:g} % "
                     "longer (a sleep at the end of the step, shown as 'other'), so this run is deliberately slower")
    return lines


def scaling_section(outcome: SuiteOutcome) -> list[str]:
    lines = ["## Scaling per thread policy", "",
             "Elapsed is the mean launch wall time (start-up included); step times are medians over kept steps "
             "of all launches; speedup and efficiency are against the smallest world size; Karp-Flatt e is "
             "the measured serial fraction."]
    header = ["processes", "launches, precision", "elapsed s", "median step s [95% CI]", "samples/s",
              "speedup [95% CI]", "efficiency [95% CI]", "Karp-Flatt e", "oversubscribed"]
    for policy, a in outcome.analysis.items():
        rows = [[str(p.world_size), fmt_precision(a, p.world_size),
                 fmt_seconds(a.wall_time.get(p.world_size)), fmt_interval(p.step_time, fmt_seconds),
                 fmt_rate(p.samples_per_second), fmt_interval(p.speedup, fmt_ratio),
                 fmt_interval(p.efficiency, fmt_ratio), fmt_fraction(a.karp_flatt.get(p.world_size)),
                 "yes" if p.oversubscribed else "no"] for p in a.points]
        lines += ["", f"### `{policy}` threads", "", f"Fastest: {processes(a.fastest_world_size)}.", ""]
        lines += markdown_table(header, rows)
        if any(p.oversubscribed for p in a.points):
            lines += ["", "Oversubscribed rows ran more busy threads than cores; they stay in the table because "
                          "their slowdown is part of the answer."]
    return lines


def plots_section(outcome: SuiteOutcome, results_dir: Path) -> list[str]:
    lines = ["## Plots", ""]
    plots = [(label.split(" ", 2)[1:], path) for label, path in outcome.files.items() if label.startswith("plot ")]
    if not plots:
        return lines + ["No plots were written for this run."]
    for (policy, name), path in plots:
        title = f"{PLOT_TITLES.get(name, name)} (`{policy}` threads)"
        if Path(path).exists():
            lines += [f"![{title}]({Path(os.path.relpath(path, results_dir)).as_posix()})", ""]
        else:
            lines += [f"{title}: missing, expected at `{path}`", ""]
    return lines[:-1]


def causes_section(outcome: SuiteOutcome) -> list[str]:
    lines = ["## What the step time is made of", "",
             "Shares of the mean step time per world size (rank means of the step timers; 'waiting' is how much "
             "longer the slowest rank took than the mean rank). All-reduce is the total per step; the part "
             "backward did not have to wait for was overlapped."]
    header = ["processes", "mean step s", *(CAUSE_LABELS[c] for c in CAUSES), "all-reduce s/step",
              "exposed s/step", "overlapped with backward", "straggler", "median skew s"]
    for policy, a in outcome.analysis.items():
        rows = []
        for ws, parts in sorted(a.breakdowns.items()):
            shares = parts.shares()
            skew = a.skew[ws]
            straggler = ("none" if skew["straggler_rank"] is None else
                         f"rank {skew['straggler_rank']} (slowest in {fmt_percent(skew['straggler_share'])} of steps)")
            rows.append([str(ws), fmt_seconds(parts.step_time), *(fmt_percent(getattr(shares, c)) for c in CAUSES),
                         fmt_seconds(a.comm_seconds.get(ws)), fmt_seconds(parts.exposed_comm_time),
                         fmt_percent(a.comm_overlap.get(ws)), straggler,
                         fmt_seconds(skew["median_skew"])])
        lines += ["", f"### `{policy}` threads", ""] + markdown_table(header, rows)
        if a.changes:
            lines += ["", "Changes of the mean step time from one world size to the next, by cause:", ""]
            lines += [f"- {change_sentence(change, a)}" for change in a.changes]
    return lines


def cpu_section(outcome: SuiteOutcome) -> list[str]:
    """CPU time and core waits per step: the kernel's side of the "compute" share."""
    lines = ["## Cores and CPU time per step", "",
             "Rank means per kept step, from the kernel: CPU seconds of every thread of a rank's process and of its "
             "training thread (the rest is gloo's all-reduce threads, autograd and intra-op workers), seconds its "
             "threads were runnable but had no core (summed over threads, so it can exceed the step), context "
             "switches, and the largest peak memory of any rank. The breakdown's compute is split into time on a "
             "core and time the training thread was runnable but had no core: compute beyond that thread's whole CPU "
             "time, at most its own run-queue wait."]
    header = ["processes", "step s", "compute s", "of it on a core s", "of it waiting for a core s",
              "CPU s (all threads)", "training thread s", "other threads s",
              "waiting for a core s (all threads)", "share of step", "involuntary switches", "voluntary switches",
              "peak RSS MB"]
    for policy, a in outcome.analysis.items():
        rows = []
        for ws, cpu in sorted(a.cpu.items()):
            if cpu is None:
                rows.append([str(ws), fmt_seconds(a.breakdowns[ws].step_time)] + ["not measured"] * 11)
                continue
            waiting = cpu.get("compute_waiting_for_core")
            split = (["not measured"] * 2 if waiting is None else
                     [fmt_seconds(cpu["compute_time"] - waiting), fmt_seconds(waiting)])
            rows.append([str(ws), fmt_seconds(a.breakdowns[ws].step_time), fmt_seconds(cpu["compute_time"]), *split,
                         fmt_seconds(cpu["cpu_time"]),
                         fmt_seconds(cpu["main_thread_cpu_time"]), fmt_seconds(cpu["other_threads_cpu_time"]),
                         fmt_seconds(cpu["run_queue_wait"]), fmt_percent(cpu["run_queue_wait_share"]),
                         fmt_count(cpu["ctx_switches_involuntary"]), fmt_count(cpu["ctx_switches_voluntary"]),
                         fmt_count(cpu["max_rss_mb"])])
        lines += ["", f"### `{policy}` threads", ""] + markdown_table(header, rows)
    return lines


def claims_section(outcome: SuiteOutcome) -> list[str]:
    """The study's explanations, one row each, against this run's numbers."""
    from lanemodel.analysis.claims import assess

    lines = ["## The study's claims, measured", "",
             "Each explanation the original study gave for its curve, the numbers of this run that bear on it, and "
             "a verdict (supported, refuted, or not measurable here, and why)."]
    for policy, a in outcome.analysis.items():
        rows = [[c.claim, c.evidence, c.verdict] for c in assess(a, outcome.probes)]
        lines += ["", f"### `{policy}` threads", ""] + markdown_table(["claim", "this run", "verdict"], rows)
    return lines


def fmt_count(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def change_sentence(change: dict, a: PolicyAnalysis) -> str:
    """'From 2 to 4 processes the mean step grew by 0.120 s (...): communication +0.090 s, ...', largest first."""
    delta = change["step_time_change"]
    before, after = a.breakdowns[change["from"]].step_time, a.breakdowns[change["to"]].step_time
    causes = sorted(change["by_cause"].items(), key=lambda item: -abs(item[1]))
    return (f"From {change['from']} to {change['to']} processes the mean step {'grew' if delta >= 0 else 'shrank'} "
            f"by {fmt_seconds(abs(delta))} s ({fmt_seconds(before)} s to {fmt_seconds(after)} s): "
            + ", ".join(f"{CAUSE_LABELS[cause]} {fmt_signed_seconds(seconds)} s" for cause, seconds in causes) + ".")


def contention_section(outcome: SuiteOutcome) -> list[str]:
    if not outcome.contention:
        return []
    rows = [[str(row.world_size), fmt_seconds(row.tuned_step_time), fmt_seconds(row.naive_step_time),
             fmt_interval(row.ratio, fmt_ratio), contention_reading(row.ratio, row.world_size)]
            for row in outcome.contention]
    return ["## Thread contention: library defaults against tuned threads", "",
            "Ratio of median step times, naive / tuned, with its 95% interval; above 1 means the library-default "
            "threads fight over the cores.", ""] + markdown_table(
        ["processes", "tuned median step s", "naive median step s", "naive / tuned [95% CI]", "reading"], rows)


def contention_reading(ratio: Interval, world_size: int) -> str:
    if ratio.low > 1.0:
        return f"library-default threads are {fmt_ratio(ratio.point)} times slower at {processes(world_size)}"
    if ratio.high < 1.0:
        return f"library-default threads are {fmt_ratio(1.0 / ratio.point)} times faster at {processes(world_size)}"
    return f"no clear difference at {processes(world_size)} (the interval includes 1)"


def model_section(outcome: SuiteOutcome) -> list[str]:
    lines = ["## Scaling model (fitted; every prediction is labelled)", "",
             "step = serial + (parallel + N x replicated) / cores in use + 2(N-1) alpha + 2(N-1)/N gradient / beta, "
             "fitted to the "
             "measured median step times and all-reduce times."]
    if outcome.config["scaling"] == "weak":
        lines.append("The model assumes a fixed global batch; this run used weak scaling, so its predictions "
                     "describe a strong-scaling run of the same work.")
    for policy, a in outcome.analysis.items():
        lines += ["", f"### `{policy}` threads", ""]
        lines += model_lines(a.model, a.fastest_world_size) if a.model else [f"No model: {a.model_note}."]
    return lines + parts_section(outcome)


def parts_section(outcome: SuiteOutcome) -> list[str]:
    """The model built from measured parts: every world size predicted without its own step time."""
    cfg = outcome.config
    where = (f"{cfg['nodes']} emulated nodes joined by {cfg['link_gbit']:g} Gbit/s links"
             if (cfg.get("nodes") or 1) > 1 else "this machine (loopback)")
    lines = ["", "## Scaling model from measured parts", "",
             f"Transport: {where}. Parts measured per world size N: one rank alone at N's per-rank batch and thread "
             "budget (wall and CPU seconds per step), and the gloo all-reduce of the gradient's buckets by N ranks "
             "with the same thread plans and transport (microbenchmark: wall, and CPU seconds per rank). "
             "Predicted step = the larger of the cores bound, efficiency x N x (rank CPU + all-reduce CPU) / cores "
             "in use, and the latency bound, rank alone + all-reduce wall (none of it assumed hidden behind "
             "backward). The efficiency is the one fitted term (how far the scheduler falls short of keeping every "
             "core busy), fitted on the other world sizes' step times: each row is predicted without its own."]
    for policy, a in outcome.analysis.items():
        lines += ["", f"### `{policy}` threads", ""]
        if not a.parts:
            lines.append(f"No model from measured parts: {a.parts_note}.")
            continue
        links = any(r.get("ring_at_link_rate") is not None for r in a.parts)
        lines += markdown_table(
            ["processes", "bound", "efficiency (fitted on)", "predicted step s", "measured step s", "error",
             "all-reduce s: microbenchmark", "all-reduce s: training (in flight)", "error"]
            + (["all-reduce s: ring at the nominal link rate"] if links else []),
            [[str(r["world_size"]), r["bound"], f"{r['efficiency']:.2f} ({', '.join(map(str, r['fitted_on']))})",
              fmt_seconds(r["predicted"]), fmt_seconds(r["measured"]), f"{100 * r['relative_error']:+.1f}%",
              "-" if r["predicted_allreduce"] is None else fmt_seconds(r["predicted_allreduce"]),
              "-" if r["measured_allreduce"] is None else fmt_seconds(r["measured_allreduce"]),
              "-" if r["allreduce_relative_error"] is None else f"{100 * r['allreduce_relative_error']:+.1f}%"]
             + ([fmt_seconds(r["ring_at_link_rate"]) if r.get("ring_at_link_rate") else "-"] if links else [])
             for r in a.parts])
        held = holdout(a.parts)
        if held is not None:
            lines += ["", f"Held-out check: {processes(held['world_size'])} predicted from the parts and the "
                          f"efficiency fitted on {', '.join(map(str, held['fitted_on']))}: "
                          f"{fmt_seconds(held['predicted'])} s against {fmt_seconds(held['measured'])} s measured, "
                          f"{100 * held['relative_error']:+.1f}%."]
    return lines


def model_lines(report: ModelReport, measured_fastest: int) -> list[str]:
    model = report.model
    beta = "unbounded (no bandwidth term)" if np.isinf(model.beta) else fmt_ratio(model.beta / 1e9)
    lines = markdown_table(["parameter", "value"], [
        ["serial s", fmt_seconds(model.serial)],
        ["parallel s (one core's work, divided by cores in use)", fmt_seconds(model.parallel)],
        ["replicated s (work every rank repeats, e.g. the optimizer step; N copies share the cores in use)",
         fmt_seconds(model.replicated)],
        ["alpha ms (latency per ring hop)", fmt_seconds(model.alpha * 1e3)],
        ["beta GB/s (all-reduce bandwidth)", beta],
        ["gradient MB", f"{model.nbytes / 1e6:.1f}"],
        ["cores", str(model.cores)]])
    holdout = report.holdout
    if holdout is None:
        lines += ["", "No held-out check: it needs at least three measured world sizes."]
    else:
        lines += ["", f"Held-out check: fitted without {processes(holdout['world_size'])}, the prediction is "
                      f"{fmt_seconds(holdout['predicted'])} s per step against {fmt_seconds(holdout['measured'])} s "
                      f"measured, a relative error of {100.0 * holdout['relative_error']:+.1f}%."]
    best = report.best_world_size_here
    lines += ["", f"Prediction: the fastest process count on this machine is {best} "
                  f"({fmt_seconds(model.predict(best))} s per step predicted); the measured fastest was "
                  f"{measured_fastest}.", ""]
    predicted = sorted(report.predictions_here.items())
    lines += markdown_table(["processes", "prediction: step s"],
                            [[str(ws), fmt_seconds(seconds)] for ws, seconds in predicted])
    lines += ["", "Prediction for several machines like this one, each running the best process count, "
                  "joined by the link bandwidth shown:", ""]
    lines += markdown_table(
        ["nodes", "processes", "link GB/s", "prediction: step s", "prediction: speedup vs one node"],
        [[str(row["nodes"]), str(row["world_size"]), fmt_ratio(row["bandwidth_bytes_per_s"] / 1e9),
          fmt_seconds(row["predicted_step_time"]), fmt_ratio(row["predicted_speedup_vs_one_node"])]
         for row in report.multi_node])
    return lines


def gate_section(outcome: SuiteOutcome) -> list[str]:
    if not outcome.baseline_name:
        return []
    s = outcome.gate_settings
    lines = ["## Regression gate", "", f"Baseline: `{outcome.baseline_name}`.", "",
             f"Rule: **regressed** when the slowdown is significant against no change (one-sided t test on "
             f"per-launch log medians; alpha {s.alpha:g} for the whole run, divided by the metrics gated and the "
             f"{s.looks} look(s) extra launches may take) and its point estimate is past the limit; **pass** when "
             f"the upper {1 - s.beta:.0%} confidence bound is inside the limit; **inconclusive** otherwise. "
             f"Limits: {METRIC_LABELS['step_time_ratio']} at most {fmt_ratio(s.max_slowdown)}; "
             f"{METRIC_LABELS['efficiency_ratio']} at least {fmt_ratio(1 - s.max_efficiency_drop)}. "
             f"Session-to-session spread assumed for step times: {s.session_sd:g} (log sd).", ""]
    lines += markdown_table(["processes", "threads", "metric", "baseline", "current", "ratio [interval]", "p",
                             "launches", "limit", "verdict"], [verdict_row(v) for v in outcome.verdicts])
    lines += [f"- {note}" for note in outcome.gate_notes + outcome.extra_launches]
    if outcome.gate is not None and outcome.gate.refused:
        return lines + ["", f"Nothing was compared: {outcome.gate.refused}."]
    regressed = outcome.regressed
    return lines + ["", f"{len(regressed)} of {len(outcome.verdicts)} comparisons regressed." if regressed
                    else "No regression."]


def verdict_row(verdict: GateVerdict) -> list[str]:
    fmt = fmt_seconds if verdict.metric == "step_time_ratio" else fmt_ratio
    word = verdict.verdict.upper()
    return [str(verdict.world_size), verdict.policy, METRIC_LABELS.get(verdict.metric, verdict.metric),
            fmt(verdict.baseline_value), fmt(verdict.current_value),
            f"{fmt_ratio(verdict.ratio)} [{fmt_ratio(verdict.ratio_low)}, {fmt_ratio(verdict.ratio_high)}]",
            f"{verdict.p_value:.2g}", f"{verdict.launches[0]} / {verdict.launches[1]}",
            fmt_ratio(verdict.limit), f"**{word}**" if verdict.verdict == "regressed" else word]


def reproduce_command(outcome: SuiteOutcome, results_dir: Path) -> str:
    cfg = outcome.config
    args = ["python -m pytest benchmarks/", f"--world-sizes {','.join(map(str, cfg['world_sizes']))}",
            f"--threads {','.join(cfg['threads'])}", f"--preset {cfg['preset']}", f"--scaling {cfg['scaling']}",
            f"--global-batch {cfg['global_batch']}", f"--steps {cfg['steps']}", f"--drop-warmup {cfg['drop_warmup']}",
            (f"--scaling-session-budget-s {cfg['session_budget_s']:g}" if cfg.get("session_budget_s")
             else f"--{'scaling-ab-' if outcome.side_name == 'REF' else ''}rounds {cfg['rounds']}"),
            f"--results-dir {results_dir}"]
    if cfg.get("workload") and cfg["workload"] != LANE_WORKLOAD:
        args.append(f"--workload {cfg['workload']}")
    if cfg["inject_comm_delay_ms"]:
        args.append(f"--inject-comm-delay-ms {cfg['inject_comm_delay_ms']:g}")
    if cfg.get("inject_step_slowdown"):
        args.append(f"--inject-step-slowdown {cfg['inject_step_slowdown']:g}")
    if outcome.comparison is not None or outcome.baseline_name:
        args.append(outcome.comparison.flag if outcome.comparison else f"--scaling-baseline {outcome.baseline_name}")
    return " ".join(args)


def sources_section(outcome: SuiteOutcome, series: LaunchSeries, results_dir: Path) -> list[str]:
    lines = ["## Where the numbers come from", "",
             "One metrics file per launch, holding every rank's per-step timers; all tables above are computed "
             "from them (failed launches are listed but left out of the statistics):", ""]
    for (policy, ws), launches in sorted(series.items()):
        links = []
        for index, launch in enumerate(launches):
            name = metrics_path(results_dir, launch_name(policy, ws, index)).name
            links.append(f"[{name}]({name})" + (f" (failed: {launch.error})" if launch.error else ""))
        lines.append(f"- `{policy}`, {processes(ws)}: " + ", ".join(links))
    traces = {name: path for name, path in outcome.files.items() if name.startswith("trace ")}
    if traces:
        lines += ["", "torch.profiler traces of one more launch per world size (open in https://ui.perfetto.dev or "
                      "chrome://tracing; outside the statistics):", ""]
        lines += [f"- {name.removeprefix('trace ')}: [{Path(path).name}]({relative_to_results(path, results_dir)})"
                  for name, path in sorted(traces.items())]
    return lines + ["", "To reproduce on the same machine:", "", "```",
                    reproduce_command(outcome, results_dir), "```"]


def relative_to_results(path: str, results_dir: Path) -> str:
    """``path`` relative to the results directory when it lies inside it, else as it is."""
    try:
        return str(Path(path).resolve().relative_to(results_dir.resolve()))
    except ValueError:
        return path


# --- the report ------------------------------------------------------------------------


def report_markdown(outcome: SuiteOutcome, series: LaunchSeries, results_dir: Path) -> str:
    """The whole report as markdown text; links are relative to results_dir, where it is saved."""
    sections = [answer_section(outcome), partial_section(outcome), machine_section(outcome)]
    if outcome.analysis:
        sections += [scaling_section(outcome), launches_section(outcome), plots_section(outcome, results_dir),
                     causes_section(outcome), cpu_section(outcome), claims_section(outcome),
                     contention_section(outcome), model_section(outcome)]
    sections += [gate_section(outcome), sources_section(outcome, series, results_dir)]
    return "\n\n".join("\n".join(section) for section in sections if section) + "\n"


def write_report(outcome: SuiteOutcome, series: LaunchSeries, results_dir: Path) -> Path:
    path = results_dir / "REPORT.md"
    path.write_text(report_markdown(outcome, series, results_dir))
    return path
