"""``ddp-lane-bench``: the scaling gate over saved runs, without pytest.

    ddp-lane-bench compare BASE CUR [--storage DIR] [gate options]
    ddp-lane-bench history [--storage DIR] [--json] [--plots DIR]
    ddp-lane-bench report DIR


BASE and CUR are saved pytest-benchmark files of the suite, or run ids/names in the storage. Exit codes:
0 no regression (inconclusive verdicts are printed), 1 regressed, 2 bad input (missing, unreadable, not
a file of this suite), 4 not comparable (every difference listed). ``history`` lists every saved run
comparable with the newest one, draws the trend plots and names the change points (exit 0, or 2).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lanemodel.analysis.gate import (
    BaselineError,
    GateSettings,
    GateSettingsError,
    check_comparable,
    compare,
    load_baseline,
    series_from_benchmarks,
)
from lanemodel.settings import BY_NAME, SettingsError, argparse_help

NO_REGRESSION, REGRESSED, BAD_INPUT, NOT_COMPARABLE = 0, 1, 2, 4
METRIC_NAMES = {"step_time_ratio": "median step time s", "efficiency_ratio": "parallel efficiency"}
GATE_OPTIONS = ("scaling_max_slowdown", "scaling_max_efficiency_drop", "scaling_alpha", "scaling_beta",
                "scaling_session_sd")


class BadInput(Exception):
    """An input that names no readable saved run of this suite."""


def resolve(ref: str, storage: Path) -> Path:
    """A file path as given, else the newest saved run in the storage whose id or name matches."""
    path = Path(ref)
    if path.is_file():
        return path
    if path.suffix == ".json" or len(path.parts) > 1:
        raise BadInput(f"{ref} does not exist")
    matches = sorted(storage.rglob(f"{ref}*.json")) or sorted(storage.rglob(f"*_{ref}.json"))
    if not matches:
        raise BadInput(f"{ref!r} is neither a file nor a saved run in {storage}")
    return matches[-1]


def read_run(ref: str, storage: Path) -> tuple[Path, dict]:
    path = resolve(ref, storage)
    try:
        return path, load_baseline(path)
    except BaselineError as exc:
        raise BadInput(str(exc).replace("baseline file", "file")) from None


def gate_settings(args: argparse.Namespace) -> GateSettings:
    values = {}
    for name in GATE_OPTIONS:
        option = BY_NAME[name]
        text = getattr(args, name)
        values[name.removeprefix("scaling_")] = option.parse(option.flag, option.default if text is None else text)
    return GateSettings(**values).validate()


def cmd_compare(args: argparse.Namespace) -> int:
    try:
        settings = gate_settings(args)
        base_path, base = read_run(args.base, Path(args.storage))
        cur_path, cur = read_run(args.cur, Path(args.storage))
    except (BadInput, SettingsError, GateSettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    try:
        check_comparable(base, cur["scaling"]["config"], str(base_path))
        result = compare(series_from_benchmarks(cur["benchmarks"]), series_from_benchmarks(base["benchmarks"]),
                         settings)
    except BaselineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return NOT_COMPARABLE
    print(f"{cur_path} against {base_path}:")
    for verdict in result.verdicts:
        print("  " + verdict.describe())
    for note in result.notes:
        print("  " + note)
    undecided = sum(v.verdict == "inconclusive" for v in result.verdicts)
    if result.regressed:
        print(f"{len(result.regressed)} regressed")
        return REGRESSED
    print("no regression" + (f" ({undecided} inconclusive)" if undecided else ""))
    return NO_REGRESSION


def cmd_history(args: argparse.Namespace) -> int:
    """Every comparable saved run in order, per (threads, world size): step time, efficiency, change points."""
    import json

    from lanemodel.analysis.history import comparable_runs, detect, load_runs, trends
    from lanemodel.outputs.history_plots import plot_history

    storage = Path(args.storage)
    try:
        alpha = BY_NAME["scaling_alpha"].parse("--alpha", args.alpha)
        runs, skipped = load_runs(storage)
    except (BaselineError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    if not runs:
        print(f"error: no saved run of this suite in {storage}" + (f" ({len(skipped)} other JSON files)"
                                                                  if skipped else ""), file=sys.stderr)
        return BAD_INPUT
    runs, not_comparable = comparable_runs(runs, runs[-1].config)
    series = trends(runs)
    changes = detect(series, alpha)
    run_ids = [run.run_id for run in runs]
    plots = plot_history(series, changes, run_ids, Path(args.plots))
    if args.json:
        print(json.dumps({
            "storage": str(storage), "runs": run_ids, "skipped": skipped, "not_comparable": not_comparable,
            "series": [{"threads": policy, "world_size": ws, "metric": metric,
                        "points": [{"run": p.run_id, "value": p.value, "low": p.low, "high": p.high} for p in points]}
                       for (policy, ws, metric), points in series.items()],
            "change_points": [{"run": c.run_id, "threads": c.policy, "world_size": c.world_size, "metric": c.metric,
                               "ratio": c.ratio, "p_value": c.p_value, "runs_before": c.runs_before,
                               "runs_after": c.runs_after} for c in changes],
            "plots": {metric: str(path) for metric, path in plots.items()}}, indent=1, allow_nan=True))
        return NO_REGRESSION
    print(f"{len(runs)} comparable saved runs in {storage}, oldest first: {', '.join(run_ids)}")
    for note in skipped + not_comparable:
        print("  skipped: " + note)
    for (policy, ws, metric), points in series.items():
        print(f"{METRIC_NAMES[metric]}, world size {ws} ({policy}): " + " ".join(f"{p.value:.4g}" for p in points))
    for c in changes:
        print(f"change point at {c.run_id}: world size {c.world_size} ({c.policy}) {METRIC_NAMES[c.metric]} "
              f"x{c.ratio:.3f}, p={c.p_value:.2g}, {c.runs_before} runs before, {c.runs_after} after")
    if not changes:
        print("no change point" + ("" if len(runs) >= 4 else " (4 or more runs are needed to find one)"))
    for metric, path in plots.items():
        print(f"plot {metric}: {path}")
    return NO_REGRESSION


def cmd_report(args: argparse.Namespace) -> int:
    """REPORT.md and the plots again, from the metrics files of a results directory."""
    from lanemodel.analysis.outcome import config_of, probes_in, summarise_session
    from lanemodel.outputs.plots import plot_all
    from lanemodel.outputs.report import write_report
    from lanemodel.records import SchemaError, load_results_dir

    results = Path(args.dir)
    try:
        series = load_results_dir(results)
        probes = probes_in(results)
    except SchemaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    config = config_of(series).as_json()
    outcome = summarise_session(series, config, None, GateSettings(), "", probes=probes)
    for policy, analysis in outcome.analysis.items():
        launches = {ws: [launch for launch in found if launch.finished] for (p, ws), found in series.items()
                    if p == policy}
        label = f"{config['preset']}, threads={policy}"
        for name, path in plot_all(analysis, launches, config["steps"], results / "plots" / policy, None,
                                   label).items():
            outcome.files[f"plot {policy} {name}"] = str(path)
    print(f"wrote {write_report(outcome, series, results)}")
    return NO_REGRESSION


def cmd_publish(args: argparse.Namespace) -> int:
    """The dashboard: a static site of every saved run, the history of the comparable ones and their change
    points, each run's report."""
    from lanemodel.analysis.history import load_runs
    from lanemodel.outputs.dashboard import PublishError, publish

    out = Path(args.out)
    if out.exists() and not out.is_dir():      # refused before anything is read or written
        print(f"error: --out {out} is a file; give a directory for the site", file=sys.stderr)
        return BAD_INPUT
    try:
        runs, skipped = load_runs(Path(args.storage))
        index = publish(runs, skipped, out)
    except (BaselineError, PublishError) as exc:
        print(f"error: --storage {args.storage}: {exc}", file=sys.stderr)
        return BAD_INPUT
    print(f"published {len(runs)} saved runs: {index}")
    return NO_REGRESSION


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ddp-lane-bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    comp = sub.add_parser("compare", help="the scaling gate's verdicts: CUR against BASE")
    comp.add_argument("base", metavar="BASE")
    comp.add_argument("cur", metavar="CUR")
    comp.add_argument("--storage", default=".benchmarks", help="pytest-benchmark storage for run ids and names")
    for name in GATE_OPTIONS:
        option = BY_NAME[name]
        comp.add_argument(option.flag, dest=name, default=None,
                          help=argparse_help(f"{option.help} (default {option.default})"))
    comp.set_defaults(run=cmd_compare)
    history = sub.add_parser("history", help="every saved run in order: trends, plots and change points")
    history.add_argument("--storage", default=".benchmarks", help="pytest-benchmark storage to read")
    history.add_argument("--json", action="store_true", help="print the series and change points as JSON")
    history.add_argument("--plots", default="results/history", help="where the trend plots go")
    history.add_argument("--alpha", default="0.05", help="significance of a change point (Bonferroni over "
                                                         "the candidates of a series)")
    history.set_defaults(run=cmd_history)
    report = sub.add_parser("report", help="rebuild REPORT.md and the plots from a results directory")
    report.add_argument("dir", metavar="DIR")
    report.set_defaults(run=cmd_report)
    site = sub.add_parser("publish", help="a static dashboard of the storage: history, change points, every run")
    site.add_argument("--storage", default=".benchmarks", help="pytest-benchmark storage to read")
    site.add_argument("--out", required=True, help="the site's directory (made if missing)")
    site.set_defaults(run=cmd_publish)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
