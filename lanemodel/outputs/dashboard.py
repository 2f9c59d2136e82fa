"""The dashboard of a benchmark storage (``ddp-lane-bench publish``): a static site that opens from the disk or
any static host, with no server and nothing fetched at view time.

- ``index.html``: per (threads, world size, metric) the history of the comparable runs as an inline SVG chart
  (the value, its 95 % band, the change points found by ``analysis.history``), and a table of every saved run
  (commit, date, machine, preset, the gate's verdicts, the A/B side);
- ``runs/<run id>.html``: one page per run: its verdicts, its REPORT.md as saved with the run, and the plots
  that can be drawn again from the saved curve (elapsed time, speedup, efficiency, breakdown), with REF's
  curve beside the working tree's for an A/B run.
"""
from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lanemodel.analysis.curve import points_from_json
from lanemodel.analysis.gate import EFFICIENCY, STEP_TIME
from lanemodel.analysis.history import ChangePoint, Point, SavedRun, comparable_runs, detect, trends
from lanemodel.analysis.scaling import Breakdown
from lanemodel.outputs.plots import (
    FILE_NAMES,
    breakdown_figure,
    efficiency_figure,
    elapsed_figure,
    save_figure,
    speedup_figure,
)

METRIC_TITLES = {STEP_TIME: "median step time (s)", EFFICIENCY: "parallel efficiency"}
REDRAWN = ("elapsed", "speedup", "efficiency", "breakdown")   # the plots a saved curve is enough for
CHART_W, CHART_H, PAD = 640, 200, 40
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
tr.regressed td { background: #fde2e1; }
.chart { display: inline-block; margin: 0 1em 1em 0; }
.chart svg { border: 1px solid #ddd; background: #fff; }
.band { fill: #4c72b0; fill-opacity: 0.2; stroke: none; }
.line { fill: none; stroke: #4c72b0; stroke-width: 2; }
.dot { fill: #4c72b0; }
.tick { stroke: #ddd; stroke-width: 1; }
.change { stroke: #c0392b; stroke-dasharray: 5 4; stroke-width: 1.5; }
.missing { color: #888; font-style: italic; }
img { max-width: 100%; }
"""


class PublishError(Exception):
    """The storage or the target cannot be published; the message names which and why."""


@dataclass(frozen=True)
class RunRow:
    run: SavedRun
    commit: str
    date: str
    machine: str
    preset: str
    verdicts: str
    regressed: bool
    side: str


def run_row(run: SavedRun) -> RunRow:
    data, scaling = run.data, run.data["scaling"]
    config = scaling.get("config", {})
    gate = scaling.get("gate") or {}
    verdicts = gate.get("verdicts") or []
    regressed = [v for v in verdicts if v["verdict"] == "regressed"]
    undecided = sum(v["verdict"] == "inconclusive" for v in verdicts)
    if gate.get("refused"):
        said = "not compared"
    elif regressed:
        said = "REGRESSED: " + ", ".join(f"ws{v['world_size']} {v['metric'].removesuffix('_ratio')} x{v['ratio']:.2f}"
                                         for v in regressed)
    elif verdicts:
        said = f"pass ({len(verdicts) - undecided} pass" + (f", {undecided} inconclusive)" if undecided else ")")
    else:
        said = "not gated"
    ab = scaling.get("ab") or {}
    side = f"{ab['side']} ({ab.get('ref', '')} @ {ab.get('commit', '')[:7]})" if ab else ""
    return RunRow(run, (data.get("commit_info") or {}).get("id", "")[:12], str(data.get("datetime", ""))[:19],
                  f"{config.get('cpu_model', '?')}, {config.get('cores_available', '?')} cores",
                  str(config.get("preset", "")), said, bool(regressed), side)


# --- charts ------------------------------------------------------------------------------


def _scale(values: list[float], size: float, flip: bool) -> Callable[[float], float]:
    """Data to pixels along one axis, with a tenth of the range as margin (y grows downwards: ``flip``)."""
    finite = [v for v in values if math.isfinite(v)]
    low, high = min(finite), max(finite)
    span = (high - low) or abs(high) * 0.1 or 1.0
    low, high = low - 0.1 * span, high + 0.1 * span
    return lambda v: PAD + (size - 2 * PAD) * ((high - v) if flip else (v - low)) / (high - low)


def history_svg(points: list[Point], run_ids: list[str], changes: list[ChangePoint], title: str) -> str:
    """One series over the comparable runs: band, line, a dot per run and a dashed line per change point
    (``data-change-run``: the first run after the shift)."""
    position = {run_id: i for i, run_id in enumerate(run_ids)}
    x = _scale([0.0, float(max(len(run_ids) - 1, 1))], CHART_W, flip=False)
    y = _scale([v for p in points for v in (p.value, p.low, p.high)], CHART_H, flip=True)
    banded = [p for p in points if math.isfinite(p.low) and math.isfinite(p.high)]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" height="{CHART_H}" role="img" '
             f'aria-label="{html.escape(title)}">',
             f'<text x="{PAD}" y="18" font-size="13">{html.escape(title)}</text>']
    if banded:
        upper = [f"{x(position[p.run_id]):.1f},{y(p.high):.1f}" for p in banded]
        lower = [f"{x(position[p.run_id]):.1f},{y(p.low):.1f}" for p in reversed(banded)]
        parts.append(f'<polygon class="band" points="{" ".join(upper + lower)}"/>')
    values = [v for p in points for v in (p.value, p.low, p.high) if math.isfinite(v)]
    for value in (min(values), max(values)):       # the scale: the lowest and highest value drawn
        parts.append(f'<line class="tick" x1="{PAD - 4}" x2="{CHART_W - PAD}" y1="{y(value):.1f}" '
                     f'y2="{y(value):.1f}"/><text x="2" y="{y(value) + 4:.1f}" font-size="10">{value:.3g}</text>')
    line = " ".join(f"{x(position[p.run_id]):.1f},{y(p.value):.1f}" for p in points)
    parts.append(f'<polyline class="line" points="{line}"/>')
    for p in points:
        parts.append(f'<circle class="dot" data-run="{html.escape(p.run_id)}" cx="{x(position[p.run_id]):.1f}" '
                     f'cy="{y(p.value):.1f}" r="3.5"><title>{html.escape(p.run_id)}: {p.value:.4g}</title></circle>')
    for change in changes:
        at = x(position[change.run_id] - 0.5)
        parts.append(f'<line class="change" data-change-run="{html.escape(change.run_id)}" x1="{at:.1f}" '
                     f'x2="{at:.1f}" y1="{PAD - 8}" y2="{CHART_H - PAD + 8}"><title>change point at '
                     f'{html.escape(change.run_id)}: x{change.ratio:.3f}, p={change.p_value:.2g}</title></line>')
    for run_id, i in position.items():             # each run's number under its place
        parts.append(f'<text x="{x(i):.1f}" y="{CHART_H - PAD + 18}" font-size="10" text-anchor="middle">'
                     f'{html.escape(run_id.split("_")[0])}</text>')
    parts.append(f'<text x="{PAD}" y="{CHART_H - 4}" font-size="11">saved runs {html.escape(run_ids[0])} .. '
                 f'{html.escape(run_ids[-1])}, oldest first</text></svg>')
    return "".join(parts)


# --- pages -------------------------------------------------------------------------------


def _page(title: str, body: str, root: str = "") -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><p><a href=\"{root}index.html\">ddp-lane-bench dashboard</a></p>"
            f"{body}</body></html>\n")


def _table(header: list[str], rows: list[tuple[str, list[str]]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(f"<tr{attrs}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>" for attrs, cells in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def index_html(rows: list[RunRow], series: dict, changes: list[ChangePoint], run_ids: list[str],
               notes: list[str]) -> str:
    charts = []
    for (policy, ws, metric), points in series.items():
        found = [c for c in changes if (c.policy, c.world_size, c.metric) == (policy, ws, metric)]
        title = f"{METRIC_TITLES[metric]}, {ws} process{'es' if ws > 1 else ''} ({policy})"
        charts.append(f'<div class="chart" data-series="{html.escape(f"{policy}-ws{ws}-{metric}")}">'
                      f"{history_svg(points, run_ids, found, title)}</div>")
    said = "".join(f"<li>change point at <b>{html.escape(c.run_id)}</b>: world size {c.world_size} "
                   f"({html.escape(c.policy)}) "
                   f"{METRIC_TITLES[c.metric]} x{c.ratio:.3f}, p={c.p_value:.2g}, {c.runs_before} runs before, "
                   f"{c.runs_after} after</li>" for c in changes) or "<li>no change point</li>"
    table = _table(["run", "commit", "date", "machine", "preset", "A/B side", "gate"], [
        (f' class="run{" regressed" if row.regressed else ""}" data-run="{html.escape(row.run.run_id)}"',
         [f'<a href="runs/{html.escape(row.run.run_id)}.html">{html.escape(row.run.run_id)}</a>',
          f"<code>{html.escape(row.commit)}</code>", html.escape(row.date), html.escape(row.machine),
          html.escape(row.preset), html.escape(row.side), html.escape(row.verdicts)]) for row in rows])
    skipped = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
    return _page("ddp-lane-bench dashboard", (
        f"<h1>DDP scaling history</h1><p>{len(run_ids)} comparable runs of {len(rows)} saved, oldest first; "
        "bands: 95 % intervals from each run's launches; dashed red: change points (the first run after a "
        f"shift).</p><ul>{said}</ul>{''.join(charts)}<h2>Saved runs</h2>{table}"
        + (f"<h2>Not in the charts</h2><ul>{skipped}</ul>" if skipped else "")))


def redraw_plots(analysis: dict, steps: int, reference: dict, out_dir: Path) -> dict[str, Path]:
    """The plots a saved curve is enough for, per policy: ``out_dir/plots/<policy>/<file>``, as REPORT.md links them;
    ``reference``: the other side's saved curve (REF of an A/B run), drawn beside."""
    written = {}
    for policy, saved in analysis.items():
        points = points_from_json(saved.get("curve", []))
        if not points:
            continue
        base = points_from_json(reference.get(policy, {}).get("curve", [])) or None
        wall = {int(ws): t for ws, t in saved.get("wall_time", {}).items()}
        over = {p.world_size: p.oversubscribed for p in points}
        fields = Breakdown.__dataclass_fields__
        breakdowns = {int(ws): Breakdown(**{k: v for k, v in b.items() if k in fields})
                      for ws, b in saved.get("breakdown", {}).items()}
        figures = {"elapsed": elapsed_figure(points, wall, steps, base, policy),
                   "speedup": speedup_figure(points, base, policy),
                   "efficiency": efficiency_figure(points, base, policy),
                   "breakdown": breakdown_figure(breakdowns, over, policy)}
        for name, figure in figures.items():
            path = out_dir / "plots" / policy / FILE_NAMES[name]
            path.parent.mkdir(parents=True, exist_ok=True)
            written[f"plots/{policy}/{FILE_NAMES[name]}"] = save_figure(figure, path)
    return written


def _keep_existing(rendered: str, page_dir: Path) -> str:
    """Images the saved run could not bring (per-step curves need the metrics files) become a note, and links
    to files that are not in the site become plain text: no broken image, no dead link."""
    def image(match: re.Match) -> str:
        src = html.unescape(match.group(1))
        if (page_dir / src).exists():
            return match.group(0)
        return f'<span class="missing">(plot {html.escape(src)}: drawn from the metrics files, not kept in the ' \
               f"saved run)</span>"

    def link(match: re.Match) -> str:
        href = html.unescape(match.group(1))
        if "://" in href or href.startswith("#") or (page_dir / href).exists():
            return match.group(0)
        return f"<span>{match.group(2)}</span>"

    rendered = re.sub(r'<img src="([^"]*)"[^>]*>', image, rendered)
    return re.sub(r'<a href="([^"]*)">(.*?)</a>', link, rendered)


def run_html(row: RunRow, reference: SavedRun | None, out: Path) -> str:
    from markdown_it import MarkdownIt

    scaling = row.run.data["scaling"]
    page_dir = out / "runs" / row.run.run_id
    plots = redraw_plots(scaling.get("analysis", {}), scaling.get("config", {}).get("steps", 0),
                         reference.data["scaling"].get("analysis", {}) if reference else {}, page_dir)
    gate = scaling.get("gate") or {}
    verdicts = _table(["processes", "threads", "metric", "ratio", "interval", "p", "launches", "verdict"], [
        ("", [str(v["world_size"]), html.escape(v["policy"]), html.escape(v["metric"]), f"{v['ratio']:.3f}",
              f"[{v['ratio_low']:.3f}, {v['ratio_high']:.3f}]", f"{v['p_value']:.2g}",
              f"{v['launches'][0]} / {v['launches'][1]}", html.escape(v["verdict"])])
        for v in gate.get("verdicts") or []]) if gate.get("verdicts") else "<p>Not gated.</p>"
    beside = (f"<p>A/B: REF's curve (<a href=\"{html.escape(reference.run_id)}.html\">{html.escape(reference.run_id)}"
              f"</a>) is drawn beside this run's as the baseline line of each plot.</p>") if reference else ""
    report = scaling.get("report_md")
    if report:
        # A saved run's report is text anyone can write: raw HTML in it is shown as text, never run.
        body = MarkdownIt("commonmark", {"html": False}).enable("table").render(report)
        body = _keep_existing(body.replace('src="', f'src="{row.run.run_id}/'), out / "runs")
    else:
        body = "".join(f'<p><img src="{html.escape(f"{row.run.run_id}/{name}")}" alt="{html.escape(name)}"></p>'
                       for name in plots)
    return _page(f"run {row.run.run_id}", (
        f"<h1>Run {html.escape(row.run.run_id)}</h1><ul><li>commit <code>{html.escape(row.commit)}</code></li>"
        f"<li>{html.escape(row.date)}</li><li>{html.escape(row.machine)}</li><li>preset {html.escape(row.preset)}</li>"
        f"<li>gate: {html.escape(row.verdicts)}</li></ul>{beside}<h2>Verdicts</h2>{verdicts}"
        f"<h2>Report</h2>{body}"), root="../")


def ref_of(run: SavedRun, runs: list[SavedRun]) -> SavedRun | None:
    """REF's saved run of an A/B run (saved just before it, named ref-<commit>), if the storage has it."""
    ab = run.data["scaling"].get("ab") or {}
    if ab.get("side") != "working tree":
        return None
    found = [other for other in runs if other.run_id.endswith(f"_ref-{ab.get('commit', '')[:12]}")
             and other.run_id < run.run_id]
    return found[-1] if found else None


def publish(runs: list[SavedRun], skipped: list[str], out: Path) -> Path:
    """Write the site into ``out`` (made if missing; a file there is refused); returns index.html."""
    if out.exists() and not out.is_dir():
        raise PublishError(f"publish target {out} is a file, not a directory")
    if not runs:
        raise PublishError("no saved run of this suite to publish" + (f" ({len(skipped)} other JSON files)"
                                                                      if skipped else ""))
    comparable, not_comparable = comparable_runs(runs, runs[-1].config)
    series = trends(comparable)
    changes = detect(series)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    rows = [run_row(run) for run in runs]
    for row in rows:
        page = run_html(row, ref_of(row.run, runs), out)
        (out / "runs" / f"{row.run.run_id}.html").write_text(page)
    index = out / "index.html"
    index.write_text(index_html(rows, series, changes, [run.run_id for run in comparable],
                                skipped + not_comparable))
    (out / "site.json").write_text(json.dumps({"runs": [row.run.run_id for row in rows],
                                               "change_points": [c.run_id for c in changes]}, indent=1))
    return index
