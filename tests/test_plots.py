"""Tests for the scaling figures: files written, series drawn, oversubscription marked."""

import numpy as np
import pytest
from PIL import Image
from test_breakdown import make_doc

from lanemodel.analysis.breakdown import breakdown, run_step_times
from lanemodel.analysis.curve import analyse_policy, mean_wall_time
from lanemodel.analysis.scaling import speedup_curve
from lanemodel.outputs.plots import (
    DPI,
    FIGURE_SIZE,
    FILE_NAMES,
    OVERSUBSCRIBED_LABEL,
    breakdown_figure,
    efficiency_figure,
    elapsed_figure,
    loss_figure,
    plot_all,
    speedup_figure,
    step_time_figure,
)

STEPS = 5
WARMUP = 1


def launch(
    world_size: int, step_time: float, wall_time: float | None, oversubscribed: bool = False
):
    """A launch whose last rank is 10% slower; the first step is a slow warm-up."""
    ranks = [
        {
            "step_time": step_time * (1.1 if rank == world_size - 1 else 1.0),
            "loss": 2.0 - 0.1 * rank,
        }
        for rank in range(world_size)
    ]
    warmup = [{**fields, "step_time": 3.0 * fields["step_time"]} for fields in ranks]
    return make_doc(
        [warmup] + [ranks] * (STEPS - 1),
        warmup=WARMUP,
        oversubscribed=oversubscribed,
        wall_time=wall_time,
    )


@pytest.fixture
def docs() -> dict:
    """Two launches per world size; 4 processes on this imagined machine oversubscribe it."""
    return {
        1: [launch(1, 1.0, 12.0), launch(1, 1.0, 14.0)],
        2: [launch(2, 0.6, 10.0), launch(2, 0.6, 11.0)],
        4: [launch(4, 0.5, 9.0, oversubscribed=True), launch(4, 0.5, 9.0, oversubscribed=True)],
    }


def points_from(docs: dict, slowdown: float = 1.0):
    return speedup_curve(
        {size: [run_step_times(doc) * slowdown for doc in runs] for size, runs in docs.items()},
        global_batch={size: 8 for size in docs},
        oversubscribed={size: runs[0].oversubscribed for size, runs in docs.items()},
        n_boot=200,
    )


def wall(docs: dict) -> dict:
    return {size: mean_wall_time(runs) for size, runs in docs.items()}


def bars(docs: dict) -> tuple[dict, dict]:
    return ({size: breakdown(runs) for size, runs in docs.items()},
            {size: runs[0].oversubscribed for size, runs in docs.items()})


def legend_texts(figure) -> list[str]:
    return [text.get_text() for text in figure.axes[0].get_legend().get_texts()]


def oversubscribed_offsets(figure) -> np.ndarray:
    """(x, y) of the hollow oversubscription markers, found through their legend label."""
    (markers,) = [
        collection
        for collection in figure.axes[0].collections
        if collection.get_label() == OVERSUBSCRIBED_LABEL
    ]
    return np.asarray(markers.get_offsets())


# --- plot_all --------------------------------------------------------------------------


@pytest.mark.parametrize("with_baseline", [False, True])
def test_plot_all_writes_six_pngs_of_the_configured_size(docs, tmp_path, with_baseline):
    baseline = points_from(docs, slowdown=1.2) if with_baseline else None
    analysis = analyse_policy("tuned", docs, n_boot=200)
    paths = plot_all(analysis, docs, STEPS, tmp_path / "figures", baseline, label="tiny, tuned")
    assert set(paths) == set(FILE_NAMES)
    expected_size = (round(FIGURE_SIZE[0] * DPI), round(FIGURE_SIZE[1] * DPI))
    for name, path in paths.items():
        assert path == tmp_path / "figures" / FILE_NAMES[name]
        assert path.stat().st_size > 0
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == expected_size


def test_every_figure_has_a_labelled_title_and_axes(docs):
    points = points_from(docs)
    figures = [
        elapsed_figure(points, wall(docs), STEPS, label="tiny, tuned"),
        speedup_figure(points, label="tiny, tuned"),
        efficiency_figure(points, label="tiny, tuned"),
        breakdown_figure(*bars(docs), label="tiny, tuned"),
        step_time_figure(docs, label="tiny, tuned"),
        loss_figure(docs, label="tiny, tuned"),
    ]
    for figure in figures:
        (axes,) = figure.axes
        assert axes.get_title().endswith("(tiny, tuned)")
        assert "(" in axes.get_xlabel() or axes.get_xlabel() == "training step"
        assert "(" in axes.get_ylabel()
        assert len(legend_texts(figure)) >= 2


# --- world-size plots ------------------------------------------------------------------


def test_speedup_draws_the_cores_ceiling_beside_the_ideal_line(docs):
    points = points_from(docs)
    lines = {line.get_label(): line for line in speedup_figure(points, cores=2).axes[0].get_lines()}
    ceiling = lines["ceiling on 2 cores (min(N, 2) / 1)"]
    np.testing.assert_allclose(ceiling.get_xdata(), [1, 2, 4])
    np.testing.assert_allclose(ceiling.get_ydata(), [1, 2, 2])        # 4 processes on 2 cores cannot pass 2x
    np.testing.assert_allclose(lines["ideal (N / 1)"].get_ydata(), [1, 2, 4])
    unknown = [line.get_label() for line in speedup_figure(points).axes[0].get_lines()]
    assert not [label for label in unknown if label.startswith("ceiling")]      # cores unknown: no ceiling drawn


def test_speedup_draws_the_ideal_line_and_the_baseline(docs):
    points = points_from(docs)
    figure = speedup_figure(points, points_from(docs, slowdown=1.2))
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    ideal = lines["ideal (N / 1)"]
    np.testing.assert_allclose(ideal.get_xdata(), [1, 2, 4])
    np.testing.assert_allclose(ideal.get_ydata(), [1, 2, 4])
    assert lines["baseline"].get_linestyle() == "--"
    # Equal slowdown at every world size leaves the speedups unchanged.
    np.testing.assert_allclose(
        lines["baseline"].get_ydata(), [point.speedup.point for point in points]
    )


def test_efficiency_has_a_unit_reference_line(docs):
    figure = efficiency_figure(points_from(docs))
    (ideal,) = [line for line in figure.axes[0].get_lines() if line.get_label() == "ideal (1.0)"]
    np.testing.assert_allclose(ideal.get_ydata(), [1.0, 1.0])


def test_elapsed_compares_wall_time_with_median_step_times_steps(docs):
    figure = elapsed_figure(points_from(docs), wall(docs), STEPS)
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    np.testing.assert_allclose(lines["launch wall time (mean)"].get_ydata(), [13.0, 10.5, 9.0])
    # The last rank is 10% slower, so kept run step times are 1.1, 0.66 and 0.55.
    np.testing.assert_allclose(
        lines["training (median step x steps)"].get_ydata(),
        [1.1 * STEPS, 0.66 * STEPS, 0.55 * STEPS],
    )


def test_elapsed_skips_failed_launches_in_the_wall_time_mean(docs):
    docs[2].append(launch(2, 0.6, wall_time=None))
    figure = elapsed_figure(points_from(docs), wall(docs), STEPS)
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    np.testing.assert_allclose(lines["launch wall time (mean)"].get_ydata(), [13.0, 10.5, 9.0])


@pytest.mark.parametrize("build", [speedup_figure, efficiency_figure])
def test_interval_plots_mark_the_oversubscribed_point(docs, build):
    points = points_from(docs)
    figure = build(points)
    assert OVERSUBSCRIBED_LABEL in legend_texts(figure)
    metric = "speedup" if build is speedup_figure else "efficiency"
    np.testing.assert_allclose(
        oversubscribed_offsets(figure), [[4, getattr(points[-1], metric).point]]
    )


def test_elapsed_marks_both_series_of_the_oversubscribed_point(docs):
    figure = elapsed_figure(points_from(docs), wall(docs), STEPS)
    np.testing.assert_allclose(
        sorted(map(tuple, oversubscribed_offsets(figure))), [(4, 0.55 * STEPS), (4, 9.0)]
    )


def test_oversubscribed_baseline_points_are_marked_too(docs):
    current = {size: launches for size, launches in docs.items() if size < 4}
    figure = speedup_figure(points_from(current), points_from(docs))
    assert oversubscribed_offsets(figure)[:, 0].tolist() == [4]


def test_no_oversubscription_mark_when_nothing_is_oversubscribed(docs):
    del docs[4]
    for figure in (speedup_figure(points_from(docs)), breakdown_figure(*bars(docs))):
        assert OVERSUBSCRIBED_LABEL not in legend_texts(figure)


def test_breakdown_bars_stack_to_the_step_time_and_mark_oversubscription(docs):
    figure = breakdown_figure(*bars(docs))
    axes = figure.axes[0]
    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["1", "2", "4"]
    stacks = [[bar.get_y() + bar.get_height() for bar in bars] for bars in axes.containers]
    tops = np.max(stacks, axis=0)
    expected = [breakdown(docs[size]).step_time for size in (1, 2, 4)]
    np.testing.assert_allclose(tops, expected)
    np.testing.assert_allclose(oversubscribed_offsets(figure), [[2, expected[2]]])


def test_breakdown_accepts_docs_keyed_by_label():
    labelled = {
        "2 tuned": breakdown([launch(2, 0.5, 8.0)]),
        "2 naive": breakdown([launch(2, 0.7, 9.0)]),
        "1 tuned": breakdown([launch(1, 1.0, 9.0)]),
    }
    figure = breakdown_figure(labelled, {})
    ticks = [tick.get_text() for tick in figure.axes[0].get_xticklabels()]
    assert ticks == ["1 tuned", "2 naive", "2 tuned"]


# --- per-step curves -------------------------------------------------------------------


def test_step_time_plot_shades_warmup_and_draws_one_line_per_world_size(docs):
    figure = step_time_figure(docs)
    texts = legend_texts(figure)
    assert "warm-up (excluded from statistics)" in texts
    assert "N = 1" in texts and f"N = 4 - {OVERSUBSCRIBED_LABEL}" in texts
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    np.testing.assert_allclose(lines["N = 2"].get_ydata(), [1.98] + [0.66] * (STEPS - 1))


def test_loss_plot_draws_rank_mean_losses(docs):
    figure = loss_figure(docs)
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    # Rank r has loss 2.0 - 0.1 r, so the rank mean at N = 4 is 2.0 - 0.15.
    np.testing.assert_allclose(lines[f"N = 4 - {OVERSUBSCRIBED_LABEL}"].get_ydata(), [1.85] * STEPS)
    np.testing.assert_allclose(lines["N = 1"].get_xdata(), range(STEPS))
