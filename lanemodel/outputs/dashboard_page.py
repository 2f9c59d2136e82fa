"""What every dashboard page shares: the frame and style, tables, and one row of facts per saved run (its
title, date, commit, machine, verdicts), every field escaped where it is written: a saved run is text anyone
can write."""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime

from lanemodel.analysis.history import SavedRun

AUTOSAVED = re.compile(r"[0-9a-f]{40}_\d{8}_\d{6}(_uncommitted-changes)?")   # pytest-benchmark's own run name
STYLE = """
:root { --ink: #1f2430; --muted: #5b6472; --line: #e2e5ea; --bg: #f4f5f7; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink);
       background: var(--bg); }
a { color: #2b5ea7; }
header.top { background: var(--ink); color: #fff; padding: 10px 28px; display: flex; align-items: baseline;
             gap: 18px; flex-wrap: wrap; }
header.top h1 { margin: 0; font-size: 18px; } header.top a { color: #fff; text-decoration: none; }
header.top span { color: #b9c0cc; font-size: 13px; }
main { padding: 16px 28px 40px; }
h1.run { font-size: 24px; margin: 4px 0; overflow-wrap: anywhere; }
h2 { font-size: 19px; margin: 26px 0 4px; } h3 { font-size: 14px; margin: 14px 0 4px; color: var(--muted);
                                                text-transform: uppercase; letter-spacing: .04em; }
.hero { display: grid; grid-template-columns: minmax(0, 1.85fr) minmax(300px, 1fr); gap: 16px; }
@media (max-width: 900px) { .hero { grid-template-columns: minmax(0, 1fr); } }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 18px; min-width: 0; }
.card h2 { margin: 0 0 2px; font-size: 17px; }
.sub { color: var(--muted); font-size: 13px; margin: 0 0 6px; overflow-wrap: anywhere; }
.big { font-size: 36px; font-weight: 700; line-height: 1.1; margin: 2px 0; }
.fastest { border-left: 4px solid #3a9a5b; padding-left: 12px; margin: 10px 0; }
svg.speedup-chart, svg.history-chart { width: 100%; height: auto; display: block; }
svg text { font-family: system-ui, sans-serif; }
.grid { stroke: #eceef2; stroke-width: 1; } text.tick { font-size: 11px; fill: var(--muted); }
text.axis { font-size: 12px; fill: #333; }
polyline { fill: none; stroke-linejoin: round; } polyline.series, polyline.measured { stroke-width: 2.2; }
polyline.ideal { stroke-width: 3.5; stroke-linecap: round; } polyline.ceiling { stroke-width: 1.6; }
line.errorbar { stroke-width: 1.6; }
circle.dot { stroke: #fff; stroke-width: 1.2; } circle.dot:hover { r: 7px; }
circle.fastest-ring { fill: none; stroke-width: 2.5; }
.band { fill-opacity: 0.14; stroke: none; } rect.oversubscribed { fill: #c0392b; fill-opacity: 0.08; }
g.change line { stroke: #c0392b; stroke-dasharray: 5 4; stroke-width: 1.6; }
g.change text { fill: #c0392b; font-size: 11px; }
.legend { list-style: none; padding: 0; margin: 4px 0 0; display: flex; flex-wrap: wrap; gap: 2px 16px;
          font-size: 12.5px; color: #444; }
.swatch { display: inline-block; width: 22px; height: 0; border-top: 2.5px solid var(--c); vertical-align: middle;
          margin-right: 6px; }
.swatch.dashed { border-top-style: dashed; } .swatch.dotted { border-top-style: dotted; }
.swatch.ring { width: 12px; height: 12px; border: 2.5px solid var(--c); border-radius: 50%; }
.swatch.shade { height: 12px; border: none; background: rgba(192, 57, 43, 0.15); }
.panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 14px; }
figure.panel { margin: 0; } figure.panel figcaption { font-weight: 600; font-size: 14px; }
ul.verdicts { list-style: none; padding: 0; margin: 0; }
ul.verdicts li { padding: 4px 0; border-bottom: 1px solid var(--line); font-size: 13.5px; }
ul.verdicts b { white-space: nowrap; }
.chip { display: inline-block; min-width: 80px; text-align: center; border-radius: 10px; padding: 0 8px;
        font-size: 12px; font-weight: 600; color: #fff; margin-right: 6px; background: #8a8f98; }
.chip.pass { background: #2e7d32; } .chip.regressed { background: #c0392b; }
.chip.inconclusive { background: #b7791f; } .chip.change { background: #6b4fa0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13.5px; background: #fff; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: #eef0f3; } tr.regressed td { background: #fde2e1; }
.missing { color: #888; font-style: italic; } img { max-width: 100%; } code { font-size: 12.5px; }
.notes { color: var(--muted); font-size: 13px; }
.report { margin-top: 14px; } .report h1 { font-size: 22px; } .report h2 { font-size: 18px; }
.report pre, .report table { display: block; overflow-x: auto; } .report code { overflow-wrap: anywhere; }
"""


def page(title: str, body: str, root: str = "", about: str = "") -> str:
    """A whole page: the title (escaped here), a bar linking the index, ``about`` (HTML) beside it."""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
            f'<style>{STYLE}</style></head><body><header class="top"><h1><a href="{root}index.html">ddp-lane-bench'
            f"</a></h1><span>DDP scaling dashboard</span>{about}</header><main>{body}</main></body></html>\n")


def table(header: list[str], rows: list[tuple[str, list[str]]]) -> str:
    """``rows``: (attributes of the row, cells as HTML)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(f"<tr{attrs}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>" for attrs, cells in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def run_title(run_id: str) -> str:
    """The name a run was saved under and its number ("main #7"); pytest-benchmark's autosaved name (commit and
    time, which the page shows anyway) becomes "run"."""
    number, _, name = run_id.partition("_")
    if not number.isdigit():
        return run_id
    return f"{'run' if not name or AUTOSAVED.fullmatch(name) else name} #{int(number)}"


def run_date(data: dict) -> str:
    text = str(data.get("datetime", ""))
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text[:19]
    return when.strftime("%Y-%m-%d %H:%M") + (" UTC" if when.utcoffset() is not None and
                                              not when.utcoffset().total_seconds() else "")


def machine_of(data: dict) -> str:
    """The CPU model (pytest-benchmark's machine_info, else the run's configuration) and the cores the run had:
    runs on other machines are other histories."""
    cpu = (data.get("machine_info") or {}).get("cpu") or {}
    config = data["scaling"].get("config", {})
    return f"{cpu.get('brand_raw') or config.get('cpu_model') or '?'}, {config.get('cores_available', '?')} cores"


def gate_said(gate: dict) -> tuple[str, bool]:
    """The gate's verdicts in a few words, and whether any regressed."""
    verdicts = gate.get("verdicts") or []
    regressed = [v for v in verdicts if v["verdict"] == "regressed"]
    undecided = sum(v["verdict"] == "inconclusive" for v in verdicts)
    if gate.get("refused"):
        return "not compared", False
    if regressed:
        return "REGRESSED: " + ", ".join(f"ws{v['world_size']} {v['metric'].removesuffix('_ratio')} "
                                         f"x{v['ratio']:.2f}" for v in regressed), True
    if verdicts:
        return f"pass ({len(verdicts) - undecided} pass" + (f", {undecided} inconclusive)" if undecided else ")"), False
    return "not gated", False


@dataclass(frozen=True)
class RunRow:
    run: SavedRun
    title: str
    commit: str
    date: str
    machine: str
    preset: str
    workload: str           # a run saved before workloads had names has none
    verdicts: str
    regressed: bool
    side: str

    @property
    def about(self) -> str:
        """The run, its commit and date, as a value's hover names them."""
        return f"{self.title} ({self.run.run_id}) · commit {self.commit[:7] or '?'} · {self.date}"


def run_row(run: SavedRun) -> RunRow:
    data, scaling = run.data, run.data["scaling"]
    config = scaling.get("config", {})
    said, regressed = gate_said(scaling.get("gate") or {})
    ab = scaling.get("ab") or {}
    side = f"{ab['side']} ({ab.get('ref', '')} @ {ab.get('commit', '')[:7]})" if ab else ""
    workload = config.get("workload_name") or config.get("workload") or ""
    return RunRow(run, run_title(run.run_id), (data.get("commit_info") or {}).get("id", "")[:12], run_date(data),
                  machine_of(data), str(config.get("preset", "")), str(workload), said, regressed, side)
