"""The dashboard's charts: the newest run's speedup against the cores' ceiling, and the small multiples of the
history (one panel per metric, a line per world size), each value naming its run, commit and date on hover."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lanemodel.analysis.gate import EFFICIENCY, STEP_TIME
from lanemodel.analysis.history import ChangePoint, Point
from lanemodel.analysis.scaling import ScalingPoint
from lanemodel.outputs.plots import WORLD_SIZE_LABEL, ceiling, ceiling_label, reference_world_size
from lanemodel.outputs.svgchart import PALETTE, Dot, Frame, esc, legend, nice_range

METRIC_TITLES = {STEP_TIME: "median step time (s)", EFFICIENCY: "parallel efficiency"}
VALUE_FORMATS = {STEP_TIME: "{:.3f} s", EFFICIENCY: "{:.2f}"}
IDEAL_COLOR, CEILING_COLOR, CHANGE_COLOR = "#b3b9c2", "#222222", "#c0392b"
MAX_RUN_LABELS = 12          # run numbers under a history panel; more would overlap


def processes(n: int) -> str:
    return f"{n} process" + ("" if n == 1 else "es")


def world_size_colors(sizes: Sequence[int]) -> dict[int, str]:
    """One colour per world size, the same in every panel of the page."""
    return {size: PALETTE[i % len(PALETTE)] for i, size in enumerate(sorted(set(sizes)))}


@dataclass(frozen=True)
class Curve:
    """One thread policy's speedup curve of the newest run."""

    policy: str
    points: list[ScalingPoint]
    fastest: int


def _speedup_title(point: ScalingPoint, policy: str, about: str) -> str:
    s = point.speedup
    over = "; oversubscribed (ranks x threads > cores)" if point.oversubscribed else ""
    return (f"{processes(point.world_size)} ({policy} threads): speedup {s.point:.2f}x [{s.low:.2f}, {s.high:.2f}], "
            f"{point.samples_per_second:.1f} samples/s{over}\n{about}")


def _draw_curve(frame: Frame, curve: Curve, color: str, about: str) -> None:
    for p in curve.points:
        frame.error_bar(p.world_size, p.speedup.low, p.speedup.high, color)
    frame.line([(p.world_size, p.speedup.point) for p in curve.points], color, css="measured",
               data=f'data-policy="{esc(curve.policy)}"')
    best = next(p for p in curve.points if p.world_size == curve.fastest)
    frame.dots([Dot(best.world_size, best.speedup.point, f"fastest: {processes(best.world_size)}")], color,
               css="fastest-ring", radius=9)
    frame.dots([Dot(p.world_size, p.speedup.point, _speedup_title(p, curve.policy, about),
                    f'data-world-size="{p.world_size}"') for p in curve.points], color)


def speedup_chart(curves: Sequence[Curve], cores: int | None, about: str) -> str:
    """The measured speedups with their intervals beside the ideal N / reference line and, where the run's cores
    are known, the ceiling min(N, cores) / min(reference, cores) no run on them can pass; the ideal line is
    cut at the chart's top when it runs far past both. ``about``: the run, commit and date, for the hover."""
    sizes = sorted({p.world_size for c in curves for p in c.points})
    reference = reference_world_size(curves[0].points)
    limits = [(n, ceiling(n, reference, cores)) for n in sizes] if cores else []
    ideal = [(n, n / reference) for n in sizes]
    measured = [p.speedup.high for c in curves for p in c.points]
    ticks, y_range = nice_range([1.08 * y for y in (*measured, *(y for _, y in limits or ideal), 1.0)], floor=0.0)
    frame = Frame(760, 390, (sizes[0] / 1.5, sizes[-1] * 1.5), y_range, log2_x=True, clip_id="speedup-clip",
                  margin=(14, 20, 46, 58))
    frame.y_grid(ticks, lambda v: f"{v:g}x")
    over = sorted({p.world_size for c in curves for p in c.points if p.oversubscribed})
    for n in over:
        frame.span(n / 2**0.3, n * 2**0.3, "oversubscribed")
    frame.line(ideal, IDEAL_COLOR, css="ideal", dash="0.1 7", clipped=True)
    if limits:
        frame.line(limits, CEILING_COLOR, css="ceiling", dash="8 5", clipped=True)
    for i, curve in enumerate(curves):
        _draw_curve(frame, curve, PALETTE[i % len(PALETTE)], about)
    frame.x_ticks([(n, str(n)) for n in sizes])
    frame.axis_labels(WORLD_SIZE_LABEL, f"speedup over N = {reference}")
    keys = [(f"{c.policy} threads: measured, 95 % interval", PALETTE[i % len(PALETTE)], "solid")
            for i, c in enumerate(curves)]
    keys += [(f"ideal (N / {reference})", IDEAL_COLOR, "dotted")]
    keys += [(ceiling_label(reference, cores), CEILING_COLOR, "dashed")] if limits else []
    keys += [("oversubscribed (ranks x threads > cores)", CHANGE_COLOR, "shade")] if over else []
    keys += [("fastest", PALETTE[0], "ring")]
    return frame.svg("speedup of the newest run against processes", "speedup-chart") + legend(keys)


def _run_ticks(run_ids: Sequence[str]) -> list[tuple[float, str]]:
    """Every run's number under its place, thinned to MAX_RUN_LABELS, the newest always labelled."""
    step = math.ceil(len(run_ids) / MAX_RUN_LABELS)
    shown = {*range(len(run_ids) - 1, -1, -step)}
    return [(i, run_id.split("_")[0].lstrip("0") or "0") for i, run_id in enumerate(run_ids) if i in shown]


def _change_marks(frame: Frame, changes: Sequence[ChangePoint], position: Mapping[str, int], metric: str) -> None:
    """One dashed line per run a shift starts at, between it and the run before; its hover names every world
    size that shifted there."""
    at: dict[str, list[ChangePoint]] = {}
    for change in changes:
        at.setdefault(change.run_id, []).append(change)
    for run_id, found in at.items():
        said = "; ".join(f"{processes(c.world_size)} x{c.ratio:.3f} (p={c.p_value:.2g}, {c.runs_before} runs "
                         f"before, {c.runs_after} after)" for c in found)
        label = f"x{found[0].ratio:.2f}" if len(found) == 1 else f"{len(found)} shifts"
        frame.vline(position[run_id] - 0.5, "change", f"change point at {run_id}, {METRIC_TITLES[metric]}: {said}",
                    f'data-change-run="{esc(run_id)}"', label)


def history_panel(metric: str, lines: Mapping[int, list[Point]], changes: Sequence[ChangePoint],
                  run_ids: Sequence[str], about: Mapping[str, str], colors: Mapping[int, str]) -> str:
    """One metric over the comparable runs (oldest first): a line and 95 % band per world size, a dot per run
    (hover: value, run, commit, date), dashed lines at the change points (the first run after the shift)."""
    position = {run_id: i for i, run_id in enumerate(run_ids)}
    ticks, y_range = nice_range([v for points in lines.values() for p in points for v in (p.value, p.low, p.high)])
    frame = Frame(600, 270, (-0.5, len(run_ids) - 0.5), y_range, margin=(14, 14, 44, 58))
    frame.y_grid(ticks, lambda v: f"{v:.3g}")
    fmt = VALUE_FORMATS[metric]
    for ws, points in lines.items():
        color = colors[ws]
        banded = [p for p in points if math.isfinite(p.low) and math.isfinite(p.high)]
        if banded:
            frame.band([(position[p.run_id], p.high) for p in banded], [(position[p.run_id], p.low) for p in banded],
                       color)
        frame.line([(position[p.run_id], p.value) for p in points], color, data=f'data-world-size="{ws}"')
        frame.dots([Dot(position[p.run_id], p.value,
                        f"{processes(ws)}: {fmt.format(p.value)}"
                        + (f" [{fmt.format(p.low)}, {fmt.format(p.high)}]" if p in banded else "")
                        + f"\n{about[p.run_id]}", f'data-run="{esc(p.run_id)}" data-world-size="{ws}"')
                    for p in points], color)
    _change_marks(frame, changes, position, metric)
    frame.x_ticks(_run_ticks(run_ids))
    frame.axis_labels("saved run (oldest first)", METRIC_TITLES[metric])
    return frame.svg(METRIC_TITLES[metric], "history-chart")
