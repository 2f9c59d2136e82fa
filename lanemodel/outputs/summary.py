"""The reviewer's summary of a gated session (``--scaling-summary-md``, ``$GITHUB_STEP_SUMMARY``): a headline,
the verdict table, the speedup curve of both sides, the measured causes that moved most between them, and
the command that reproduces the session. Markdown that GitHub and GitLab render, kept under GitHub's
65,536-character limit for a comment so that it can be posted on the pull request as it is.
"""
from __future__ import annotations

from lanemodel.analysis.gate import STEP_TIME, GateVerdict
from lanemodel.analysis.outcome import SuiteOutcome
from lanemodel.analysis.scaling import CAUSES
from lanemodel.outputs.report import fmt_ratio, fmt_seconds, markdown_table, processes, workload_title

MAX_CHARS = 65_536          # GitHub's limit for a pull-request comment
CAUSE_ROWS = 8              # the largest moves of the breakdown's parts, over every world size
MIN_PART_S = 1e-3           # a part below a millisecond a step has no meaningful ratio
METRIC_WORDS = {"step_time_ratio": "step time", "efficiency_ratio": "parallel efficiency"}


def headline(outcome: SuiteOutcome | None) -> str:
    """'REGRESSED: 2 processes' step time x1.08 [1.05, 1.11] against main@abc1234', 'no regression, 2
    inconclusive, against ...', or why nothing was gated."""
    if outcome is None:
        return "NOTHING MEASURED: no launch finished in this session"
    prefix = "PARTIAL RUN, " if outcome.partial else ""
    against = outcome.against or outcome.baseline_name
    if outcome.gate is None:
        return prefix + "not gated: nothing to compare with"
    if outcome.gate.refused:
        return prefix + f"NOT COMPARED: {outcome.gate.refused}"
    if not outcome.verdicts and outcome.gate_notes:
        return prefix + "; ".join(outcome.gate_notes)
    regressed = outcome.regressed
    if regressed:
        named = "; ".join(_named(v) for v in regressed[:3]) + (f"; and {len(regressed) - 3} more"
                                                                 if len(regressed) > 3 else "")
        return f"{prefix}REGRESSED: {named} against {against}"
    undecided = sum(v.verdict == "inconclusive" for v in outcome.verdicts)
    return (f"{prefix}no regression" + (f", {undecided} inconclusive" if undecided else "")
            + f" ({len(outcome.verdicts)} verdicts) against {against}")


def _named(verdict: GateVerdict) -> str:
    return (f"{processes(verdict.world_size)}' {METRIC_WORDS.get(verdict.metric, verdict.metric)} "
            f"x{verdict.ratio:.2f} [{verdict.ratio_low:.2f}, {verdict.ratio_high:.2f}]")


def verdict_rows(outcome: SuiteOutcome) -> list[list[str]]:
    """One row per verdict: what a test parses back and checks against the saved verdicts."""
    rows = []
    for v in outcome.verdicts:
        fmt = fmt_seconds if v.metric == STEP_TIME else fmt_ratio
        rows.append([str(v.world_size), v.policy, METRIC_WORDS.get(v.metric, v.metric),
                     "**REGRESSED**" if v.verdict == "regressed" else v.verdict,
                     f"{v.ratio:.3f}", f"[{v.ratio_low:.3f}, {v.ratio_high:.3f}]", f"{v.p_value:.2g}",
                     f"{v.launches[0]} / {v.launches[1]}", fmt(v.baseline_value), fmt(v.current_value),
                     f"{v.limit:.3f}"])
    return rows


def _curve(analysis: dict) -> dict[int, dict]:
    return {point["world_size"]: point for point in analysis.get("curve", [])}


def curve_section(outcome: SuiteOutcome, current: dict, plot_link: str) -> list[str]:
    """Speedup and median step time of both sides per world size, as a table and as one Mermaid chart
    (rendered by GitHub and GitLab; the PNG with intervals is the artifact's)."""
    lines = ["### Speedup curves", ""]
    for policy, mine in current.items():
        theirs = _curve(outcome.reference_analysis.get(policy, {}))
        ours = _curve(mine)
        sizes = sorted(set(ours) | set(theirs))
        rows = [[str(ws), _speedup(theirs.get(ws)), _speedup(ours.get(ws)), _step(theirs.get(ws)),
                 _step(ours.get(ws)), "oversubscribed" if ours.get(ws, {}).get("oversubscribed") else ""]
                for ws in sizes]
        lines += [f"Threads `{policy}` (speedup against the smallest world size; step time: median seconds):", ""]
        lines += markdown_table(["processes", f"speedup, {outcome.side_name}", "speedup, this change",
                                 f"step s, {outcome.side_name}", "step s, this change", "note"], rows)
        if theirs and len(sizes) > 1:
            lines += ["", "```mermaid", "xychart-beta", f'  title "Speedup, {policy}: {outcome.side_name} '
                      f'(first line) and this change (second)"',
                      "  x-axis [" + ", ".join(str(ws) for ws in sizes) + "]", '  y-axis "speedup"',
                      "  line [" + ", ".join(_number(theirs.get(ws)) for ws in sizes) + "]",
                      "  line [" + ", ".join(_number(ours.get(ws)) for ws in sizes) + "]", "```"]
        lines.append("")
    if plot_link:
        lines.append(f"The speedup plot with both sides and their 95 % intervals: `{plot_link}` in the results.")
    return lines


def _speedup(point: dict | None) -> str:
    return f"{point['speedup']['point']:.2f}" if point else "-"


def _step(point: dict | None) -> str:
    return f"{point['step_time']['point']:.3f}" if point else "-"


def _number(point: dict | None) -> str:
    return f"{point['speedup']['point']:.3f}" if point else "0"


def moved_causes(reference: dict, current: dict) -> list[tuple[float, str, int, str, float, float]]:
    """(|change|, policy, world size, cause, seconds per step on the other side, on this one), largest first:
    the breakdown's parts (compute, communication, wait, ...) of every world size both sides measured."""
    moved = []
    for policy, mine in current.items():
        theirs = reference.get(policy, {}).get("breakdown", {})
        for ws, parts in mine.get("breakdown", {}).items():
            if ws not in theirs:
                continue
            for cause in CAUSES:
                before = theirs[ws]["shares"][cause] * theirs[ws]["step_time"]
                after = parts["shares"][cause] * parts["step_time"]
                moved.append((abs(after - before), policy, int(ws), cause, before, after))
    return sorted(moved, reverse=True)


def causes_section(outcome: SuiteOutcome, current: dict) -> list[str]:
    moved = moved_causes(outcome.reference_analysis, current)[:CAUSE_ROWS]
    if not moved:
        return []
    rows = [[str(ws), policy, cause, f"{before:.4f}", f"{after:.4f}", f"{after - before:+.4f}",
             f"{after / before:.2f}x" if before > MIN_PART_S else "-"] for _, policy, ws, cause, before, after in moved]
    return ["### What moved", "",
            f"Seconds per step of each measured part of the step, {outcome.side_name} against this change, "
            "largest changes first (the parts sum to the median step time; `wait` is the slowest rank's lead "
            "over the mean rank, `other` what no timer covers):", "",
            *markdown_table(["processes", "threads", "part", f"s/step, {outcome.side_name}",
                             "s/step, this change", "change", "ratio"], rows)]


def summary_markdown(outcome: SuiteOutcome | None, current_analysis: dict, reproduce: str,
                     plot_link: str = "") -> str:
    """The whole summary. ``current_analysis``: this session's curve in its saved form (analysis_json);
    ``reproduce``: the command that runs the same comparison locally."""
    lines = ["## DDP scaling gate", "", f"**{headline(outcome)}**", ""]
    if outcome is not None and outcome.config:
        lines += [f"Workload: {workload_title(outcome.config)}.", ""]
    if outcome is not None and outcome.verdicts:
        lines += markdown_table(["processes", "threads", "metric", "verdict", "ratio", "interval", "p",
                                 f"launches (this / {outcome.side_name})", outcome.side_name, "this change",
                                 "limit"], verdict_rows(outcome))
        lines += ["", "ratio: this change / " + outcome.side_name + " (step time: larger is slower; efficiency: "
                  "smaller is worse), with its interval and the one-sided p against no change.", ""]
    if outcome is not None:
        lines += [f"- {note}" for note in outcome.partial + outcome.gate_notes]
        lines += [""] + curve_section(outcome, current_analysis, plot_link)
        lines += [""] + causes_section(outcome, current_analysis)
    lines += ["", "### Reproduce locally", "", "```", reproduce, "```", ""]
    text = "\n".join(lines)
    if len(text) > MAX_CHARS:       # many policies and world sizes: the tables go, the headline stays
        cut = "\n\n(summary cut at GitHub's comment limit; REPORT.md in the results has every table)\n"
        text = text[:MAX_CHARS - len(cut)] + cut
    return text
