"""The lever study's group of the suite (``pytest benchmarks/ --levers SPEC``): its items, its checks before any
launch, and its report, saved run and terminal lines at the end (``benchmarks.levers`` runs the blocks)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import suite
from benchmarks.levers import LEVER_MARKER, LeverStudy
from benchmarks.state import state_of


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{LEVER_MARKER}: the lever study (--levers), one world size per item")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker(LEVER_MARKER) is None:
        return
    sizes = state_of(metafunc.config).options.world_sizes
    metafunc.parametrize("lever_world_size", sizes, ids=[f"ws{ws}" for ws in sizes])


@pytest.hookimpl(trylast=True)     # after the suite's plugin has selected the group
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every value checked at every world size before any launch: a bad one is a usage error naming it."""
    from lanemodel.engine.leverspec import check_runnable, parse_levers
    from lanemodel.settings import SettingsError, check_batch_splits

    if not any(item.get_closest_marker(LEVER_MARKER) for item in items):
        return
    state = state_of(config)
    opts = state.options
    try:
        check_batch_splits(opts)
        values = parse_levers(opts.levers)
        check_runnable(values, suite.train_config(opts, Path(opts.results_dir) / "data"), opts.world_sizes)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    state.lever_values = values


@pytest.fixture(scope="session")
def lever_study(request: pytest.FixtureRequest, suite_options, lane_data: Path) -> LeverStudy:
    """The session's study: its values, the gradient's shapes (for the predicted bytes), the emulated nodes
    with --nodes, one short warm-up launch (none with --warmup-launches 0)."""
    from benchmarks.plugin import make_progress
    from benchmarks.session_setup import make_nodes
    from lanemodel.engine.leverspec import gradient_shapes

    state = state_of(request.config)
    opts = suite_options
    values = state.lever_values
    launches = len(opts.world_sizes) * opts.levers_blocks * (len(values) + 1 + 2)
    nodes = make_nodes(state, opts) if opts.nodes > 1 else None
    shapes = gradient_shapes(suite.train_config(opts, lane_data))
    state.levers = LeverStudy(opts, opts.levers, values, lane_data, shapes, nodes=nodes,
                              progress=make_progress(request.config, opts.steps, launches))
    if opts.warmup_launches:
        state.levers.warm_up(max(opts.world_sizes))
    return state.levers


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    study = state_of(config).levers
    if study is not None:
        output_json["lever_study"] = {**study.as_json(), "config": suite.run_config(study.opts)}


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """REPORT.md and levers.json in the results directory, also after a failed or interrupted value."""
    from lanemodel.outputs.levers_report import write_lever_report

    study = state_of(session.config).levers
    if study is None:
        return
    found, config = study.as_json(), suite.run_config(study.opts)
    results = Path(study.opts.results_dir)
    (results / "levers.json").write_text(json.dumps({**found, "config": config}, indent=1))
    write_lever_report(found, config, results)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    study = state_of(config).levers
    if study is None:
        return
    terminalreporter.section("DDP levers (value / default, 95% interval; loss difference, 90% interval)")
    found = study.as_json()
    for ws, sizes in found["world_sizes"].items():
        for row in sizes["rows"] + ([sizes["recommended"]] if sizes["recommended"] else []):
            ratio = f"{row['ratio']:.3f} [{row['ratio_interval'][0]:.3f}, {row['ratio_interval'][1]:.3f}]" \
                if row.get("ratio") is not None else "–"
            loss = f"{row['loss_difference']:+.2%}" if row.get("loss_difference") is not None else "–"
            terminalreporter.write_line(f"ws{ws} {row['label']}: step-time ratio {ratio}, loss {loss} -> "
                                        f"{row['verdict']}")
    if found["fastest"]:
        best = found["fastest"]
        terminalreporter.write_line(f"fastest that trains the same: {best['world_size']} processes, "
                                    f"{best['configuration']} ({best['samples_per_second']:.1f} samples/s)")
    terminalreporter.write_line(f"report: {Path(study.opts.results_dir) / 'REPORT.md'}")
