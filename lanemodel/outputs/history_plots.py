"""Trend plots of saved runs: one PNG per metric, a line per (threads, world size) with its 95 % band,
change points marked where the shift starts."""
from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lanemodel.analysis.gate import EFFICIENCY, STEP_TIME
from lanemodel.analysis.history import ChangePoint, Point

TITLES = {STEP_TIME: ("median step time (s)", "step_time_history.png"),
          EFFICIENCY: ("parallel efficiency", "efficiency_history.png")}


def plot_history(series: dict[tuple[str, int, str], list[Point]], changes: list[ChangePoint], run_ids: list[str],
                 out_dir: Path) -> dict[str, Path]:
    """One figure per metric over ``run_ids`` (every run's position on the x axis, oldest first)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    position = {run_id: i for i, run_id in enumerate(run_ids)}
    written = {}
    for metric, (ylabel, name) in TITLES.items():
        lines = {key: points for key, points in series.items() if key[2] == metric}
        if not lines:
            continue
        figure = Figure(figsize=(max(7.5, 0.45 * len(run_ids) + 3), 4.8), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for (policy, ws, _), points in lines.items():
            x = [position[p.run_id] for p in points]
            label = f"{policy}, {ws} process" + ("" if ws == 1 else "es")
            drawn = axes.plot(x, [p.value for p in points], marker="o", label=label)[0]
            axes.fill_between(x, [p.low for p in points], [p.high for p in points], color=drawn.get_color(),
                              alpha=0.2, linewidth=0)
        for change in (c for c in changes if c.metric == metric):
            x = position[change.run_id] - 0.5
            axes.axvline(x, color="tab:red", linestyle="--", linewidth=1)
            axes.annotate(f"ws{change.world_size} x{change.ratio:.2f}", (x, 1.0), xycoords=("data", "axes fraction"),
                          rotation=90, va="top", ha="right", fontsize=8, color="tab:red")
        axes.set_xticks(range(len(run_ids)), run_ids, rotation=60, ha="right", fontsize=8)
        axes.set_xlabel("saved run (oldest first)")
        axes.set_ylabel(ylabel)
        axes.set_title(f"{ylabel} per saved run; dashed: change points")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
        path = out_dir / name
        figure.savefig(path, dpi=110)
        written[metric] = path
    return written
