"""A session's conclusion written out: the plots per thread policy and REPORT.md, named in the outcome's files."""
from __future__ import annotations

from pathlib import Path

from lanemodel.analysis.curve import points_from_json
from lanemodel.analysis.outcome import SuiteOutcome
from lanemodel.outputs.plots import plot_all
from lanemodel.outputs.report import write_report
from lanemodel.records import LaunchSeries
from lanemodel.settings import SweepSettings


def write_outcome(outcome: SuiteOutcome, series: LaunchSeries, opts: SweepSettings) -> SuiteOutcome:
    """Plots (beside the compared side's curve, when there is one) and the report, from what the session
    concluded; failed launches are left out of the plots as they are of the statistics."""
    baseline_curves = outcome.reference_analysis
    results = Path(opts.outputs.results_dir)
    for policy, a in outcome.analysis.items():
        label = f"{opts.workload.preset}, threads={policy}"
        base = points_from_json(baseline_curves[policy]["curve"]) if policy in baseline_curves else None
        launches = {ws: [launch for launch in found if launch.finished]
                    for (p, ws), found in series.items() if p == policy}
        for name, path in plot_all(a, launches, opts.workload.steps, results / "plots" / policy, base, label).items():
            outcome.files[f"plot {policy} {name}"] = str(path)
    outcome.files["report"] = str(write_report(outcome, series, results))
    return outcome
