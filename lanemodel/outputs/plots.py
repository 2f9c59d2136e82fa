"""Figures of a scaling run: elapsed time, speedup, efficiency, time breakdown, per-step curves.

Oversubscribed world sizes (more busy threads than cores) are marked on
every world-size axis rather than left out: their slowdown is a finding.
Figures are built on their own Agg canvas instead of through pyplot, so no
global backend is switched and no figure stays registered after saving.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lanemodel.analysis.breakdown import loss_curve, step_time_curve
from lanemodel.analysis.curve import PolicyAnalysis
from lanemodel.analysis.scaling import CAUSES, Breakdown, ScalingPoint
from lanemodel.analysis.stats import Interval
from lanemodel.records import Launch

LaunchesByLabel = Mapping[Hashable, Sequence[Launch]]

FILE_NAMES = {
    "elapsed": "elapsed_vs_processes.png",
    "speedup": "speedup_vs_processes.png",
    "efficiency": "efficiency_vs_processes.png",
    "breakdown": "time_breakdown.png",
    "step_time": "step_time_over_steps.png",
    "loss": "loss_over_steps.png",
}
OVERSUBSCRIBED_LABEL = "oversubscribed (ranks x threads > cores)"
CAUSE_COLORS = {
    "compute": "tab:blue",
    "optimizer": "tab:purple",
    "communication": "tab:orange",
    "data": "tab:green",
    "wait": "tab:red",
    "other": "tab:gray",
}
FIGURE_SIZE = (7.5, 4.8)
DPI = 110
WORLD_SIZE_LABEL = "processes (world size N)"


# --- shared pieces ---------------------------------------------------------------------


def _new_axes() -> tuple[Figure, Axes]:
    figure = Figure(figsize=FIGURE_SIZE, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _finish(axes: Axes, ylabel: str, title: str, label: str) -> None:
    """Every figure ends the same way: y label, title with the run's label, legend."""
    axes.set_ylabel(ylabel)
    axes.set_title(f"{title} ({label})" if label else title)
    axes.legend()


def _world_size_axis(axes: Axes, world_sizes: Sequence[int]) -> None:
    """Log2 x axis whose ticks are exactly the measured world sizes."""
    ticks = sorted(set(world_sizes))
    axes.set_xscale("log", base=2)
    axes.set_xticks(ticks, labels=[str(size) for size in ticks])
    axes.minorticks_off()
    axes.set_xlabel(WORLD_SIZE_LABEL)


def _log2_span(world_size: float) -> tuple[float, float]:
    """A band around one world size on a log2 axis, narrower than the gap to its neighbours."""
    return world_size / 2**0.3, world_size * 2**0.3


def _mark_oversubscribed(
    axes: Axes, flagged: Sequence[tuple[float, float]], spans: Sequence[tuple[float, float]]
) -> None:
    """Hollow red markers on the flagged (x, y) values and a red band behind each span."""
    if not flagged:
        return
    for low, high in spans:
        axes.axvspan(low, high, color="red", alpha=0.08, zorder=0)
    xs, ys = zip(*flagged)
    axes.scatter(
        xs,
        ys,
        s=140,
        facecolors="none",
        edgecolors="red",
        linewidths=1.8,
        zorder=5,
        label=OVERSUBSCRIBED_LABEL,
    )


def _mark_oversubscribed_sizes(axes: Axes, flagged: Sequence[tuple[int, float]]) -> None:
    sizes = {size for size, _ in flagged}
    _mark_oversubscribed(axes, flagged, [_log2_span(size) for size in sizes])


def _world_sizes(
    points: Sequence[ScalingPoint], baseline_points: Sequence[ScalingPoint]
) -> list[int]:
    return sorted({point.world_size for point in [*points, *baseline_points]})


def _world_size_of(docs: Sequence[Launch]) -> int:
    return docs[0].world_size


def _ordered(docs: LaunchesByLabel) -> list[tuple[Hashable, Sequence[Launch]]]:
    """Non-empty entries by world size, then label, so 'naive' and 'tuned' sit side by side."""
    entries = [(key, launches) for key, launches in docs.items() if launches]
    return sorted(entries, key=lambda entry: (_world_size_of(entry[1]), str(entry[0])))


def _is_oversubscribed(docs: Sequence[Launch]) -> bool:
    return any(doc.oversubscribed for doc in docs)


def save_figure(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI)
    return path


# --- world-size plots ------------------------------------------------------------------


def elapsed_figure(
    points: Sequence[ScalingPoint],
    wall_time: Mapping[int, float | None],
    steps: int,
    baseline_points: Sequence[ScalingPoint] | None = None,
    label: str = "",
) -> Figure:
    """Mean launch wall time (start-up included) beside training time (median step x steps).

    The gap between the two is process start-up and rendezvous: cost a user
    pays per launch that speedups of the training loop alone do not show.
    """
    baseline_points = baseline_points or []
    wall = {size: seconds for size, seconds in sorted(wall_time.items()) if seconds is not None}

    def training(series: Sequence[ScalingPoint]) -> dict[int, float]:
        # Baseline points use this run's step counts, so both curves price the same work.
        return {
            point.world_size: point.step_time.point * steps
            for point in series
            if point.world_size in wall_time
        }

    trained = training(points)
    figure, axes = _new_axes()
    axes.plot(list(wall), list(wall.values()), marker="o", label="launch wall time (mean)")
    axes.plot(
        list(trained), list(trained.values()), marker="s", label="training (median step x steps)"
    )
    baseline = training(baseline_points)
    if baseline:
        axes.plot(
            list(baseline), list(baseline.values()), linestyle="--", marker="s", label="baseline"
        )
    flagged = [
        (point.world_size, seconds)
        for series, curves in ((points, (wall, trained)), (baseline_points, (baseline,)))
        for point in series
        if point.oversubscribed
        for curve in curves
        if (seconds := curve.get(point.world_size)) is not None
    ]
    _mark_oversubscribed_sizes(axes, flagged)
    _world_size_axis(axes, [*wall, *trained, *baseline])
    _finish(axes, "elapsed time (s)", "Elapsed time vs processes", label)
    return figure


def _interval_axes(
    points: Sequence[ScalingPoint],
    baseline_points: Sequence[ScalingPoint],
    metric: Callable[[ScalingPoint], Interval],
) -> tuple[Figure, Axes]:
    """Measured points with their bootstrap intervals as error bars, plus baseline and marks."""
    figure, axes = _new_axes()
    intervals = [metric(point) for point in points]
    centres = np.array([interval.point for interval in intervals])
    # A percentile interval need not contain its point estimate; clip so bars stay drawable.
    below = np.clip(centres - [interval.low for interval in intervals], 0.0, None)
    above = np.clip([interval.high for interval in intervals] - centres, 0.0, None)
    axes.errorbar(
        [point.world_size for point in points],
        centres,
        yerr=[below, above],
        marker="o",
        capsize=4,
        label=f"measured ({intervals[0].confidence:.0%} interval)",
    )
    if baseline_points:
        axes.plot(
            [point.world_size for point in baseline_points],
            [metric(point).point for point in baseline_points],
            linestyle="--",
            marker="s",
            label="baseline",
        )
    flagged = [
        (point.world_size, metric(point).point)
        for point in [*points, *baseline_points]
        if point.oversubscribed
    ]
    _mark_oversubscribed_sizes(axes, flagged)
    _world_size_axis(axes, _world_sizes(points, baseline_points))
    return figure, axes


def reference_world_size(points: Sequence[ScalingPoint]) -> int:
    """The world size speedups are relative to.

    Runs saved before ScalingPoint stored it give it back through efficiency = speedup / (N / reference).
    """
    point = points[0]
    if point.reference_world_size is not None:
        return point.reference_world_size
    return round(point.world_size * point.efficiency.point / point.speedup.point)


def ceiling(world_size: int, reference: int, cores: int) -> float:
    """The most speedup ``world_size`` ranks can reach over ``reference`` on ``cores`` cores: ranks past the
    cores share them, so no run can pass min(N, cores) / min(reference, cores)."""
    return min(world_size, cores) / min(reference, cores)


def ceiling_label(reference: int, cores: int) -> str:
    return f"ceiling on {cores} cores (min(N, {cores}) / {min(reference, cores)})"


def speedup_figure(
    points: Sequence[ScalingPoint],
    baseline_points: Sequence[ScalingPoint] | None = None,
    label: str = "",
    cores: int | None = None,
) -> Figure:
    """Throughput speedup with intervals against the ideal N / reference line and, with ``cores``, the hardware's
    ceiling min(N, cores) / min(reference, cores): no run on that many cores can pass it."""
    baseline_points = baseline_points or []
    figure, axes = _interval_axes(points, baseline_points, lambda point: point.speedup)
    reference = reference_world_size(points)
    sizes = _world_sizes(points, baseline_points)
    axes.plot(
        sizes,
        [size / reference for size in sizes],
        color="gray",
        linestyle=":",
        label=f"ideal (N / {reference})",
    )
    if cores:
        axes.plot(sizes, [ceiling(size, reference, cores) for size in sizes], color="black",
                  linestyle="--", label=ceiling_label(reference, cores))
    _finish(axes, f"speedup (x, throughput relative to N = {reference})", "Speedup vs processes", label)
    return figure


def efficiency_figure(
    points: Sequence[ScalingPoint],
    baseline_points: Sequence[ScalingPoint] | None = None,
    label: str = "",
) -> Figure:
    """Parallel efficiency with intervals; 1 means every added process paid off fully."""
    figure, axes = _interval_axes(points, baseline_points or [], lambda point: point.efficiency)
    axes.axhline(1.0, color="gray", linestyle=":", label="ideal (1.0)")
    _finish(axes, "parallel efficiency (fraction of ideal speedup)", "Parallel efficiency vs processes", label)
    return figure


def breakdown_figure(
    bars: Mapping[Hashable, Breakdown], oversubscribed: Mapping[Hashable, bool], label: str = ""
) -> Figure:
    """One stacked bar per entry: mean step seconds split by cause (compute, communication, ...)."""
    entries = [
        (key, bars[key], oversubscribed.get(key, False))
        for key in sorted(bars, key=lambda key: (bars[key].world_size, str(key)))
    ]
    figure, axes = _new_axes()
    positions = np.arange(len(entries))
    bottoms = np.zeros(len(entries))
    for cause in CAUSES:
        seconds = np.array([parts.attributed_seconds()[cause] for _, parts, _ in entries])
        axes.bar(positions, seconds, bottom=bottoms, color=CAUSE_COLORS[cause], label=cause)
        bottoms += seconds
    flagged = [
        (position, parts.step_time)
        for position, (_, parts, oversubscribed) in zip(positions, entries)
        if oversubscribed
    ]
    bar_slots = [(position - 0.5, position + 0.5) for position, _ in flagged]
    _mark_oversubscribed(axes, flagged, bar_slots)
    axes.set_xticks(positions, labels=[str(key) for key, _, _ in entries])
    axes.set_ylim(0, 1.3 * max(bottoms.max(initial=0.0), 1e-9))  # room above the tallest bar for marks and legend
    axes.set_xlabel(WORLD_SIZE_LABEL)
    _finish(axes, "mean time per step (s)", "Where the step time goes", label)
    return figure


# --- per-step curves -------------------------------------------------------------------


def _first_launches(docs: LaunchesByLabel) -> list[tuple[str, Launch]]:
    """(legend label, first launch that completed a step) per entry, in world-size order."""
    chosen = []
    for key, launches in _ordered(docs):
        first = next((doc for doc in launches if doc.run_step_times), None)
        if first is None:
            continue
        name = f"N = {key}" if isinstance(key, int) else str(key)
        if _is_oversubscribed(launches):
            name += f" - {OVERSUBSCRIBED_LABEL}"
        chosen.append((name, first))
    return chosen


def _curve_axes(
    docs: LaunchesByLabel, curve: Callable[[Launch], list[tuple[int, float]]]
) -> tuple[Figure, Axes, list[Launch]]:
    """One line per entry from its first launch; returns the launches drawn."""
    figure, axes = _new_axes()
    launches = _first_launches(docs)
    for name, doc in launches:
        steps, values = zip(*curve(doc))
        axes.plot(steps, values, marker=".", label=name)
    axes.set_xlabel("training step")
    return figure, axes, [doc for _, doc in launches]


def step_time_figure(docs: LaunchesByLabel, label: str = "") -> Figure:
    """Slowest-rank step time per step, warm-up steps shaded because statistics skip them."""
    figure, axes, drawn = _curve_axes(docs, step_time_curve)
    warmups = sorted({doc.warmup_steps_dropped for doc in drawn} - {0})
    for index, warmup in enumerate(warmups):
        axes.axvspan(
            -0.5,
            warmup - 0.5,
            color="gray",
            alpha=0.15,
            zorder=0,
            label="warm-up (excluded from statistics)" if index == 0 else None,
        )
    _finish(axes, "step time (s, slowest rank)", "Step time over steps", label)
    return figure


def loss_figure(docs: LaunchesByLabel, label: str = "") -> Figure:
    """Mean training loss over ranks per step, to see that scaling out did not derail training."""
    figure, axes, _ = _curve_axes(docs, loss_curve)
    _finish(axes, "training loss (mean over ranks)", "Loss over steps", label)
    return figure


# --- all figures -----------------------------------------------------------------------


def plot_all(
    analysis: PolicyAnalysis,
    docs: Mapping[int, Sequence[Launch]],
    steps: int,
    out_dir: Path,
    baseline_points: list[ScalingPoint] | None = None,
    label: str = "",
) -> dict[str, Path]:
    """Write the six figures of one policy's sweep as PNG files into out_dir; returns name -> path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    points = analysis.points
    over = {p.world_size: p.oversubscribed for p in points}
    figures = {
        "elapsed": elapsed_figure(points, analysis.wall_time, steps, baseline_points, label),
        "speedup": speedup_figure(points, baseline_points, label, cores=analysis.cores),
        "efficiency": efficiency_figure(points, baseline_points, label),
        "breakdown": breakdown_figure(analysis.breakdowns, over, label),
        "step_time": step_time_figure(docs, label),
        "loss": loss_figure(docs, label),
    }
    return {name: save_figure(figure, out_dir / FILE_NAMES[name]) for name, figure in figures.items()}
