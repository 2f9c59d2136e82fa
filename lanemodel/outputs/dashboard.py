"""The dashboard of a benchmark storage (``ddp-lane-bench publish``): a static site that opens from the disk or
any static host, with no server, no script and nothing fetched at view time.

- ``index.html`` (``dashboard_index``): the newest run's speedup against the cores' ceiling, its fastest world
  size and the newest verdicts; per machine the history of the comparable runs as small multiples with their
  change points (found by ``analysis.history``); a table of every saved run;
- ``runs/<run id>.html``: one page per run, titled by its name and date: its verdicts, its REPORT.md as saved
  with the run, and the plots that can be drawn again from the saved curve (elapsed time, speedup against the
  cores' ceiling, efficiency, breakdown), with REF's curve beside the working tree's for an A/B run.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

from lanemodel.analysis.curve import points_from_json
from lanemodel.analysis.history import SavedRun
from lanemodel.analysis.scaling import Breakdown
from lanemodel.outputs.dashboard_index import index_html, machine_histories
from lanemodel.outputs.dashboard_page import RunRow, page, run_row, run_title, table
from lanemodel.outputs.plots import (
    FILE_NAMES,
    breakdown_figure,
    efficiency_figure,
    elapsed_figure,
    save_figure,
    speedup_figure,
)

REDRAWN = ("elapsed", "speedup", "efficiency", "breakdown")   # the plots a saved curve is enough for


class PublishError(Exception):
    """The storage or the target cannot be published; the message names which and why."""


def redraw_plots(analysis: dict, config: dict, reference: dict, out_dir: Path) -> dict[str, Path]:
    """The plots a saved curve is enough for, per policy: ``out_dir/plots/<policy>/<file>``, as REPORT.md links them;
    ``reference``: the other side's saved curve (REF of an A/B run), drawn beside."""
    steps, cores = config.get("steps", 0), config.get("cores_available")
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
                   "speedup": speedup_figure(points, base, policy, cores=cores),
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
    plots = redraw_plots(scaling.get("analysis", {}), scaling.get("config", {}),
                         reference.data["scaling"].get("analysis", {}) if reference else {}, page_dir)
    gate = scaling.get("gate") or {}
    verdicts = table(["processes", "threads", "metric", "ratio", "interval", "p", "launches", "verdict"], [
        ("", [str(v["world_size"]), html.escape(v["policy"]), html.escape(v["metric"]), f"{v['ratio']:.3f}",
              f"[{v['ratio_low']:.3f}, {v['ratio_high']:.3f}]", f"{v['p_value']:.2g}",
              f"{v['launches'][0]} / {v['launches'][1]}",
              f'<span class="chip {html.escape(v["verdict"])}">{html.escape(v["verdict"])}</span>'])
        for v in gate.get("verdicts") or []]) if gate.get("verdicts") else "<p>Not gated.</p>"
    beside = (f"<p>A/B: REF's curve (<a href=\"{html.escape(reference.run_id)}.html\">"
              f"{html.escape(run_title(reference.run_id))}</a>) is drawn beside this run's as the baseline line of "
              "each plot.</p>") if reference else ""
    report = scaling.get("report_md")
    if report:
        # A saved run's report is text anyone can write: raw HTML in it is shown as text, never run.
        body = MarkdownIt("commonmark", {"html": False}).enable("table").render(report)
        body = _keep_existing(body.replace('src="', f'src="{row.run.run_id}/'), out / "runs")
    else:
        body = "".join(f'<p><img src="{html.escape(f"{row.run.run_id}/{name}")}" alt="{html.escape(name)}"></p>'
                       for name in plots)
    workload = f" · workload {html.escape(row.workload)}" if row.workload else ""
    return page(f"{row.title} · {row.date}", (
        f'<h1 class="run">{html.escape(row.title)} <small>· {html.escape(row.date)}</small></h1>'
        f"<p class=\"sub\">commit <code>{html.escape(row.commit)}</code> · {html.escape(row.machine)} · preset "
        f"{html.escape(row.preset)}{workload} · gate: {html.escape(row.verdicts)} · saved as "
        f"<code>{html.escape(row.run.run_id)}.json</code></p>{beside}"
        f'<h2>Verdicts</h2>{verdicts}<section class="card report">{body}</section>'), root="../")


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
    histories = machine_histories(runs)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    rows = [run_row(run) for run in runs]
    for row in rows:
        (out / "runs" / f"{row.run.run_id}.html").write_text(run_html(row, ref_of(row.run, runs), out))
    index = out / "index.html"
    index.write_text(index_html(rows, histories, skipped))
    (out / "site.json").write_text(json.dumps({
        "runs": [row.run.run_id for row in rows],
        "machines": {h.machine: [run.run_id for run in h.runs] for h in histories},
        "change_points": sorted({c.run_id for h in histories for c in h.changes})}, indent=1))
    return index
