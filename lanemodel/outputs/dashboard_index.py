"""The dashboard's start page. First screen: the newest run's speedup against the cores' ceiling, its fastest
world size and the newest verdicts; below, per machine, the history as small multiples (one panel per metric,
a line per world size, change points marked), then every saved run."""
from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from lanemodel.analysis.curve import points_from_json
from lanemodel.analysis.gate import EFFICIENCY, STEP_TIME
from lanemodel.analysis.history import ChangePoint, Point, SavedRun, comparable_runs, detect, trends
from lanemodel.outputs.dashboard_charts import (
    METRIC_TITLES,
    Curve,
    history_panel,
    processes,
    speedup_chart,
    world_size_colors,
)
from lanemodel.outputs.dashboard_page import RunRow, machine_of, page, table
from lanemodel.outputs.svgchart import legend

MAX_VERDICTS = 6         # the newest verdicts on the first screen; the run's page lists them all
MAX_CHANGES = 3
SHORT_METRICS = {STEP_TIME: "step time", EFFICIENCY: "efficiency"}


@dataclass(frozen=True)
class MachineHistory:
    """The runs of one machine comparable with its newest run, their series and change points."""

    machine: str
    runs: list[SavedRun]
    series: dict[tuple[str, int, str], list[Point]]
    changes: list[ChangePoint]
    notes: list[str]              # the machine's runs left out, and why


def machine_histories(runs: Sequence[SavedRun]) -> list[MachineHistory]:
    """One history per machine, the newest run's machine first: a slower machine is not a regression."""
    groups: dict[str, list[SavedRun]] = {}
    for run in reversed(runs):
        groups.setdefault(machine_of(run.data), []).insert(0, run)
    out = []
    for machine, group in groups.items():
        kept, notes = comparable_runs(group, group[-1].config)
        series = trends(kept)
        out.append(MachineHistory(machine, kept, series, detect(series), notes))
    return out


# --- the first screen ----------------------------------------------------------------------


def newest_curves(run: SavedRun) -> list[Curve]:
    """Each thread policy's saved curve and its fastest world size (the highest throughput where the run did
    not save which)."""
    curves = []
    for policy, saved in (run.data["scaling"].get("analysis") or {}).items():
        points = points_from_json(saved.get("curve", []))
        sizes = {p.world_size for p in points}
        if points:
            fastest = saved.get("fastest_world_size")
            curves.append(Curve(policy, points, fastest if fastest in sizes else
                                max(points, key=lambda p: p.samples_per_second).world_size))
    return curves


def fastest_html(curves: Sequence[Curve]) -> str:
    """The world size with the highest throughput, over every thread policy of the run."""
    if not curves:
        return '<div class="fastest" id="fastest"><p class="big">none</p><p>no launch of this run finished</p></div>'
    best, curve = max(((next(p for p in c.points if p.world_size == c.fastest), c) for c in curves),
                      key=lambda found: found[0].samples_per_second)
    reference = curve.points[0]
    gain = (f"speedup {best.speedup.point:.2f}x over {processes(reference.world_size)}" if best is not reference
            else "every larger world size was slower")
    return (f'<div class="fastest" id="fastest" data-world-size="{best.world_size}"><h3>fastest world size</h3>'
            f'<p class="big">{processes(best.world_size)}</p><p>{best.samples_per_second:.1f} samples/s with '
            f"{html.escape(curve.policy)} threads; {gain}</p></div>")


def _verdict_item(v: dict) -> str:
    metric = v["metric"].removesuffix("_ratio").replace("_", " ")
    return (f'<li title="95 % interval [{v["ratio_low"]:.3f}, {v["ratio_high"]:.3f}], p={v["p_value"]:.2g}">'
            f'<span class="chip {html.escape(v["verdict"])}">{html.escape(v["verdict"])}</span>'
            f"{processes(int(v['world_size']))}, {html.escape(v['policy'])}: {html.escape(metric)} "
            f"x{v['ratio']:.3f}</li>")


def verdicts_html(row: RunRow, history: MachineHistory, titles: dict[str, str]) -> str:
    """The newest run's gate verdicts, regressed first, and the newest change points of its machine's history."""
    gate = row.run.data["scaling"].get("gate") or {}
    verdicts = sorted(gate.get("verdicts") or [], key=lambda v: v["verdict"] != "regressed")
    items = [_verdict_item(v) for v in verdicts[:MAX_VERDICTS]]
    if len(verdicts) > MAX_VERDICTS:
        items.append(f"<li>{len(verdicts) - MAX_VERDICTS} more on the run's page</li>")
    if not verdicts:
        why = "its baseline was not comparable" if gate.get("refused") else "no baseline compared in this run"
        items.append(f'<li><span class="chip">{html.escape(row.verdicts)}</span>{why}</li>')
    for c in sorted(history.changes, key=lambda c: c.index, reverse=True)[:MAX_CHANGES]:
        items.append(f'<li title="p={c.p_value:.2g}, {c.runs_before} runs before, {c.runs_after} after">'
                     f'<span class="chip change">shift</span>{processes(c.world_size)}: {SHORT_METRICS[c.metric]} '
                     f"x{c.ratio:.2f} since <b>{html.escape(titles[c.run_id])}</b></li>")
    return f'<h3>newest verdicts</h3><ul class="verdicts" id="verdicts">{"".join(items)}</ul>'


def first_screen(row: RunRow, history: MachineHistory, titles: dict[str, str]) -> str:
    config = row.run.config
    curves = newest_curves(row.run)
    cores = config.get("cores_available")
    chart = speedup_chart(curves, cores, row.about) if curves else "<p>No launch of this run finished.</p>"
    under = f"on {cores} cores no run can pass the dashed ceiling; " if cores else ""
    workload = f" · workload {html.escape(row.workload)}" if row.workload else ""
    link = f'runs/{html.escape(row.run.run_id)}.html'
    return (f'<div class="hero"><section class="card" id="latest-speedup"><h2>Speedup of the newest run</h2>'
            f'<p class="sub">throughput against processes; {under}hover a point for its interval</p>{chart}</section>'
            f'<section class="card" id="newest"><p class="sub">newest run</p><h2><a href="{link}">'
            f"{html.escape(row.title)}</a></h2><p class=\"sub\">{html.escape(row.date)} · commit "
            f"<code>{html.escape(row.commit[:7])}</code> · {html.escape(row.machine)} · preset "
            f"{html.escape(row.preset)}{workload}</p>{fastest_html(curves)}{verdicts_html(row, history, titles)}"
            f'<p><a href="{link}">the run\'s report and plots</a></p></section></div>')


# --- the history, per machine --------------------------------------------------------------


def history_section(history: MachineHistory, about: dict[str, str]) -> str:
    run_ids = [run.run_id for run in history.runs]
    colors = world_size_colors([ws for _, ws, _ in history.series])
    panels = []
    for policy, metric in sorted({(p, m) for p, _, m in history.series}, key=lambda pm: (pm[1] != STEP_TIME, pm)):
        lines = {ws: points for (p, ws, m), points in history.series.items() if (p, m) == (policy, metric)}
        found = [c for c in history.changes if (c.policy, c.metric) == (policy, metric)]
        panels.append(f'<figure class="panel card" data-metric="{metric}" data-policy="{html.escape(policy)}">'
                      f"<figcaption>{METRIC_TITLES[metric]}, {html.escape(policy)} threads</figcaption>"
                      f"{history_panel(metric, lines, found, run_ids, about, colors)}</figure>")
    keys = legend([(processes(ws), color, "solid") for ws, color in colors.items()])
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in history.notes)
    return (f'<section class="machine"><h2>History on '
            f"{html.escape(history.machine)}</h2><p class=\"sub\">{len(run_ids)} comparable saved runs, oldest "
            "first; bands: 95 % intervals from each run's launches; dashed red: change points (the first run "
            f"after a shift); hover a dot for its run, commit and date.</p>{keys}"
            f'<div class="panels">{"".join(panels)}</div>'
            + (f'<ul class="notes">{notes}</ul>' if notes else "") + "</section>")


def runs_table(rows: Sequence[RunRow]) -> str:
    """Every saved run, newest first."""
    return table(["run", "date", "commit", "machine", "preset", "A/B side", "gate"], [
        (f' class="run{" regressed" if row.regressed else ""}" data-run="{html.escape(row.run.run_id)}"',
         [f'<a href="runs/{html.escape(row.run.run_id)}.html">{html.escape(row.title)}</a>',
          html.escape(row.date), f"<code>{html.escape(row.commit[:7])}</code>", html.escape(row.machine),
          html.escape(row.preset + (f", {row.workload}" if row.workload else "")), html.escape(row.side),
          html.escape(row.verdicts)]) for row in reversed(rows)])


def index_html(rows: Sequence[RunRow], histories: Sequence[MachineHistory], skipped: Sequence[str]) -> str:
    about = {row.run.run_id: row.about for row in rows}
    titles = {row.run.run_id: row.title for row in rows}
    sections = "".join(history_section(h, about) for h in histories if h.series)
    skipped_html = "".join(f"<li>{html.escape(note)}</li>" for note in skipped)
    count = (f"<span>{len(rows)} saved run{'s' if len(rows) != 1 else ''} on {len(histories)} "
             f"machine{'s' if len(histories) != 1 else ''}</span>")
    return page("ddp-lane-bench dashboard", first_screen(rows[-1], histories[0], titles) + sections
                + f"<h2>Saved runs</h2>{runs_table(rows)}"
                + (f'<h2>Not in the charts</h2><ul class="notes">{skipped_html}</ul>' if skipped_html else ""),
                about=count)
