"""Figures of a scaling run: elapsed time, speedup, efficiency, time breakdown, per-step curves.

Oversubscribed world sizes (more busy threads than cores) are marked on
every world-size axis rather than left out: their slowdown is a finding.
Figures are built on their own Agg canvas instead of through pyplot, so no
global backend is switched and no figure stays registered after saving.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmarks.breakdown import breakdown, loss_curve, run_step_times, step_time_curve
from benchmarks.scaling import CAUSES, ScalingPoint
from benchmarks.stats import Interval

DocsByLabel = Mapping[Hashable, Sequence[dict]]

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


def _world_size_of(docs: Sequence[dict]) -> int:
    return docs[0]["config"]["world_size"]


def _docs_by_world_size(docs: DocsByLabel) -> dict[int, list[dict]]:
    """Regroup documents by the world size they record, whatever the caller keyed them by."""
    grouped: dict[int, list[dict]] = defaultdict(list)
    for launches in docs.values():
        for doc in launches:
            grouped[doc["config"]["world_size"]].append(doc)
    return dict(grouped)


def _ordered(docs: DocsByLabel) -> list[tuple[Hashable, Sequence[dict]]]:
    """Non-empty entries by world size, then label, so 'naive' and 'tuned' sit side by side."""
    entries = [(key, launches) for key, launches in docs.items() if launches]
    return sorted(entries, key=lambda entry: (_world_size_of(entry[1]), str(entry[0])))


def _is_oversubscribed(docs: Sequence[dict]) -> bool:
    return any(doc["env"]["oversubscribed"] for doc in docs)


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI)
    return path


# --- world-size plots ------------------------------------------------------------------


def elapsed_figure(
    points: Sequence[ScalingPoint],
    docs: DocsByLabel,
    baseline_points: Sequence[ScalingPoint] | None = None,
    label: str = "",
) -> Figure:
    """Launch wall time (start-up included) beside training time (median step x steps).

    The gap between the two is process start-up and rendezvous: cost a user
    pays per launch that speedups of the training loop alone do not show.
    """
    baseline_points = baseline_points or []
    by_size = _docs_by_world_size(docs)
    steps = {size: launches[0]["config"]["steps"] for size, launches in by_size.items()}
    wall = {
        size: float(np.mean([doc["launch"]["wall_time"] for doc in launches if doc["launch"]]))
        for size, launches in sorted(by_size.items())
        if any(doc["launch"] for doc in launches)
    }

    def training(series: Sequence[ScalingPoint]) -> dict[int, float]:
        # Baseline points use this run's step counts, so both curves price the same work.
        return {
            point.world_size: point.step_time.point * steps[point.world_size]
            for point in series
            if point.world_size in steps
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


def _reference_world_size(points: Sequence[ScalingPoint]) -> int:
    """The world size speedups are relative to.

    ScalingPoint does not store it, but efficiency = speedup / (N / reference) gives it back.
    """
    point = points[0]
    return round(point.world_size * point.efficiency.point / point.speedup.point)


def speedup_figure(
    points: Sequence[ScalingPoint],
    baseline_points: Sequence[ScalingPoint] | None = None,
    label: str = "",
) -> Figure:
    """Throughput speedup with intervals against the ideal N / reference line."""
    baseline_points = baseline_points or []
    figure, axes = _interval_axes(points, baseline_points, lambda point: point.speedup)
    reference = _reference_world_size(points)
    sizes = _world_sizes(points, baseline_points)
    axes.plot(
        sizes,
        [size / reference for size in sizes],
        color="gray",
        linestyle=":",
        label=f"ideal (N / {reference})",
    )
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


def breakdown_figure(docs: DocsByLabel, label: str = "") -> Figure:
    """One stacked bar per entry: mean step seconds split by cause (compute, communication, ...)."""
    entries = [
        (key, breakdown(launches), _is_oversubscribed(launches))
        for key, launches in _ordered(docs)
        if any(run_step_times(doc).size for doc in launches)
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


def _first_launches(docs: DocsByLabel) -> list[tuple[str, dict]]:
    """(legend label, first launch that completed a step) per entry, in world-size order."""
    chosen = []
    for key, launches in _ordered(docs):
        first = next((doc for doc in launches if doc["run_step_times"]), None)
        if first is None:
            continue
        name = f"N = {key}" if isinstance(key, int) else str(key)
        if _is_oversubscribed(launches):
            name += f" - {OVERSUBSCRIBED_LABEL}"
        chosen.append((name, first))
    return chosen


def _curve_axes(
    docs: DocsByLabel, curve: Callable[[dict], list[tuple[int, float]]]
) -> tuple[Figure, Axes, list[dict]]:
    """One line per entry from its first launch; returns the launches drawn."""
    figure, axes = _new_axes()
    launches = _first_launches(docs)
    for name, doc in launches:
        steps, values = zip(*curve(doc))
        axes.plot(steps, values, marker=".", label=name)
    axes.set_xlabel("training step")
    return figure, axes, [doc for _, doc in launches]


def step_time_figure(docs: DocsByLabel, label: str = "") -> Figure:
    """Slowest-rank step time per step, warm-up steps shaded because statistics skip them."""
    figure, axes, drawn = _curve_axes(docs, step_time_curve)
    warmups = sorted({doc["warmup_steps_dropped"] for doc in drawn} - {0})
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


def loss_figure(docs: DocsByLabel, label: str = "") -> Figure:
    """Mean training loss over ranks per step, to see that scaling out did not derail training."""
    figure, axes, _ = _curve_axes(docs, loss_curve)
    _finish(axes, "training loss (mean over ranks)", "Loss over steps", label)
    return figure


# --- all figures -----------------------------------------------------------------------


def plot_all(
    points: list[ScalingPoint],
    docs: DocsByLabel,
    out_dir: Path,
    baseline_points: list[ScalingPoint] | None = None,
    label: str = "",
) -> dict[str, Path]:
    """Write the six figures of a run as PNG files into out_dir; returns name -> path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {
        "elapsed": elapsed_figure(points, docs, baseline_points, label),
        "speedup": speedup_figure(points, baseline_points, label),
        "efficiency": efficiency_figure(points, baseline_points, label),
        "breakdown": breakdown_figure(docs, label),
        "step_time": step_time_figure(docs, label),
        "loss": loss_figure(docs, label),
    }
    return {name: _save(figure, out_dir / FILE_NAMES[name]) for name, figure in figures.items()}
