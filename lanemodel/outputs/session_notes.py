"""REPORT.md's account of the session itself: whether it is partial (interrupted, failed launches), how its
launches were spent (the session plan), and the precision each median reached."""
from __future__ import annotations

import math

from lanemodel.analysis.curve import PolicyAnalysis
from lanemodel.analysis.launchstats import FEW_LAUNCHES
from lanemodel.analysis.outcome import SuiteOutcome


def fmt_precision(a: PolicyAnalysis, world_size: int) -> str:
    """Launches and how well they pin the median down: '8, ±1.2 %', '3, ±2.0 %, few', '1, one launch'."""
    count = a.launch_counts.get(world_size, 0)
    precision = a.precision.get(world_size, math.inf)
    if not math.isfinite(precision):
        return f"{count}, one launch: no spread measured" if count == 1 else str(count)
    return f"{count}, ±{precision:.1%}" + (", few" if count < FEW_LAUNCHES else "")


def partial_section(outcome: SuiteOutcome) -> list[str]:
    if not outcome.partial:
        return []
    return ["> **Partial run.** " + "; ".join(outcome.partial) + ". Every number below comes from the launches "
            "that finished; world sizes without one are missing from the tables."]


def launches_section(outcome: SuiteOutcome) -> list[str]:
    """Launches per world size with the precision of their median, the plan that gave them, and why any
    launch beyond the first ones ran."""
    if not outcome.analysis:
        return []
    plan = outcome.plan or {}
    planned = {(row["threads"], row["world_size"]): row for row in plan.get("world_sizes", [])}
    lines = ["## Launches and precision", "",
             f"Precision is the standard error of the mean log launch median, about the relative error of a "
             f"median; world sizes with fewer than {FEW_LAUNCHES} launches are marked few (their bootstrap "
             f"interval rests on few launches), and one launch measures no spread at all."]
    if plan:
        lines += ["", f"Session budget {plan['budget_s']:g} s (`--scaling-session-budget-s`, counted from the first "
                      f"launch); the launches and probes took {plan.get('session_s', math.nan):.0f} s. Launches went "
                      f"where one more narrows the report's intervals most per second it costs: the smallest world "
                      f"size's median enters every speedup, the fastest and its runner-up decide the sweet spot, "
                      f"the largest is the model's held-out point. `--scaling-precise` makes a baseline-quality run."]
    rows = []
    for policy, a in outcome.analysis.items():
        for point in a.points:
            row = planned.get((policy, point.world_size))
            rows.append([str(point.world_size), f"`{policy}`", fmt_precision(a, point.world_size),
                         str(row["launches"]) if row else "", f"{row['cost_s']:.0f}" if row else "",
                         "; ".join(row["reasons"]) if row else ""])
    lines += ["", "| processes | threads | launches, precision | planned | s a launch | why |",
              "| --- | --- | --- | --- | --- | --- |"] + ["| " + " | ".join(row) + " |" for row in rows]
    if outcome.extra_launches and not outcome.baseline_name:
        lines += [""] + [f"- {note}" for note in outcome.extra_launches]
    return lines
