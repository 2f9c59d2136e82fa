"""pytest plugin of the suite, a shell over the measurement session (``lanemodel.session``): options become
settings, the session's refusals usage errors (exit 4), its launches benchmark rounds, its result
``extra_info``, the saved JSON, the terminal's tables, gate items and files. It decides nothing about what
to launch. Each hook is implemented once, here; the fixtures are in ``lanemodel.suite.fixtures``."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lanemodel.outputs.table import lever_lines, performance_lines, summary_lines
from lanemodel.session.opening import check_before_collection, check_levers, open_session
from lanemodel.session.runs import launch_summary
from lanemodel.session.summaries import summary_targets, write_summaries
from lanemodel.settings import BY_NAME, LANE_WORKLOAD
from lanemodel.suite import bench_storage
from lanemodel.suite.gate_items import GATE_MARKER, compares, gate_cases, with_needed_benchmarks
from lanemodel.suite.options import add_options, env_name, read_options
from lanemodel.suite.shell import SHELL_KEY, SuiteShell, shell_of, usage_errors

MARKER = "scaling_benchmark"
PERFORMANCE_MARKER = "performance"
CALIBRATION_MARKER = "gate_calibration"
PROBE_MARKER = "scaling_probe"
LEVER_MARKER = "lever_study"
GROUP_MARKERS = {MARKER: "scaling", PROBE_MARKER: "scaling", PERFORMANCE_MARKER: "performance",
                 CALIBRATION_MARKER: "calibration", LEVER_MARKER: "levers", GATE_MARKER: "gate"}
ITEMS_DIR = Path(__file__).resolve().parent / "items"     # the items a repository of one's own runs
SUITE_DIRS_INI = "lanebench_suite_dirs"
pytest_plugins = ["lanemodel.suite.fixtures"]
XDIST_REFUSAL = ("the DDP scaling benchmarks cannot run under pytest-xdist: launches running side by side "
                 "would share the cores and skew every number. Run them without -n.")


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    parser.addini(SUITE_DIRS_INI, type="paths", help="directories whose tests are the suite's own (beside the "
                                                     "plugin's items, run by pytest --workload MODULE:ATTR)")


def pytest_configure(config: pytest.Config) -> None:
    """Markers; when the suite runs, its settings, checked now (before collection or any launch)."""
    config.addinivalue_line("markers", f"{MARKER}: a DDP scaling benchmark (one world size, several launches)")
    config.addinivalue_line("markers", f"{PERFORMANCE_MARKER}: performance targets, selected with --performance")
    config.addinivalue_line("markers", f"{CALIBRATION_MARKER}: the gate's error rates, selected with "
                                       "--gate-calibration")
    config.addinivalue_line("markers", f"{PROBE_MARKER}: a cause probe run with the scaling group")
    config.addinivalue_line("markers", f"{GATE_MARKER}: one verdict of the regression gate, after the benchmarks")
    config.addinivalue_line("markers", f"{LEVER_MARKER}: the lever study (--levers), one world size per item")
    shell = config.stash[SHELL_KEY] = SuiteShell(config)
    if _names_workload(config) and config.args_source == pytest.Config.ArgsSource.INVOCATION_DIR \
            and not _asks_for_suite(config):
        config.args = [str(ITEMS_DIR)]     # a repository of one's own, no path given: the suite's items
    if not _asks_for_suite(config):
        return
    if config.getoption("numprocesses", None) and not hasattr(config, "workerinput"):
        raise pytest.UsageError(XDIST_REFUSAL)
    settings = read_options(config)
    with usage_errors():
        check_before_collection(settings)
        shell.summaries = summary_targets(settings)
    shell.start(settings)
    config.pluginmanager.register(shell, "lanebench-shell")     # its pytest_keyboard_interrupt needs the shell


def pytest_unconfigure(config: pytest.Config) -> None:
    """No process or checkout made for the session outlives it: the fork server, the resource tracker and
    REF's worktree go here (also after a failure or Ctrl-C)."""
    from lanemodel.engine.forkserver import shutdown_fork_server

    shutdown_fork_server()
    shell_of(config).cleanup.close()


def _asks_for_suite(config: pytest.Config) -> bool:
    """A path given names (or lies in, or holds) the plugin's items or a directory of ``lanebench_suite_dirs``:
    every other pytest session is left as it is."""
    suites = [ITEMS_DIR, *(Path(path).resolve() for path in config.getini(SUITE_DIRS_INI))]
    for arg in config.args:
        path = (Path(config.invocation_params.dir) / arg.split("::")[0]).resolve()
        if any(path == suite or suite in path.parents or path in suite.parents for suite in suites):
            return True
    return False


def _names_workload(config: pytest.Config) -> bool:
    """--workload, LANEBENCH_WORKLOAD or the ini's scaling_workload names one."""
    return bool(config.getoption("lanebench_workload") or os.environ.get(env_name("workload"), "").strip()
                or config.getini(BY_NAME["workload"].ini_key) not in ("", LANE_WORKLOAD))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    settings = shell_of(metafunc.config).settings
    marked = {name for name in (GATE_MARKER, MARKER, LEVER_MARKER) if metafunc.definition.get_closest_marker(name)}
    if not marked:
        return
    if settings is None:      # collected through a path that does not name the suite
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: run the suite as pytest --workload MODULE:ATTR, or "
                                f"name a directory of {SUITE_DIRS_INI}")
    if GATE_MARKER in marked:
        gates = gate_cases(settings)
        metafunc.parametrize(("thread_policy", "world_size", "gate_metric"), gates,
                             ids=[f"{p}-ws{ws}-{metric}" for p, ws, metric in gates])
    elif MARKER in marked:
        cases = [(policy, ws) for policy in settings.launch.threads for ws in settings.launch.world_sizes]
        metafunc.parametrize(("thread_policy", "world_size"), cases, ids=[f"{p}-ws{ws}" for p, ws in cases])
    else:
        sizes = settings.launch.world_sizes
        metafunc.parametrize("lever_world_size", sizes, ids=[f"ws{ws}" for ws in sizes])


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]):
    """After every other plugin has selected items (``-k``, ``--lf``, ``-m``): this session's group only, the
    gate items last with the benchmarks they need, and the measurement session opened for them (every
    refusal now, before any launch)."""
    collected = list(items)
    yield
    shell = shell_of(config)
    if shell.settings is None:
        return
    _select_group(config, items, _group(config, shell))
    with_needed_benchmarks(collected, items, MARKER)
    scaling = [item for item in items if item.get_closest_marker(MARKER) or item.get_closest_marker(PROBE_MARKER)]
    if scaling and hasattr(config, "workerinput"):     # reached when the suite was collected from a path above it
        raise pytest.UsageError(XDIST_REFUSAL)
    write, live = shell.write_progress()
    with usage_errors():
        if scaling:
            keys = [_key(item) for item in items if item.get_closest_marker(MARKER)]
            shell.session = open_session(shell.settings, keys=keys, saved=bench_storage.saved_runs(config),
                                         root=config.rootpath, write=write, live=live,
                                         inspect_workload=not config.option.collectonly,
                                         series_name=lambda key: f"test_ddp_scaling[{key[0]}-ws{key[1]}]")
            shell.adopt(shell.session)
            _in_session_order(items, shell.session.order)
        if any(item.get_closest_marker(LEVER_MARKER) for item in items):
            shell.lever_values = check_levers(shell.settings)


def _key(item: pytest.Item) -> tuple[str, int]:
    return item.callspec.params["thread_policy"], item.callspec.params["world_size"]


def _group(config: pytest.Config, shell: SuiteShell) -> str:
    """The one group this session runs: calibration, performance, the lever study, or the scaling group."""
    if config.getoption("lanebench_calibration") is not None or config.getoption("lanebench_calibration_ab") \
            is not None:
        return "calibration"
    if config.getoption("lanebench_performance"):
        return "performance"
    return "levers" if shell.settings.levers.spec.strip() else "scaling"


def _select_group(config: pytest.Config, items: list[pytest.Item], group: str) -> None:
    """Deselect the other groups' items; the gate's items run only in a scaling session that compares."""
    gated = group == "scaling" and compares(config, shell_of(config).settings)

    def kept(item: pytest.Item) -> bool:
        groups = {GROUP_MARKERS[mark.name] for mark in item.iter_markers() if mark.name in GROUP_MARKERS}
        if "gate" in groups:
            return gated
        return not groups or group in groups

    drop = [item for item in items if not kept(item)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if kept(item)]


def _in_session_order(items: list[pytest.Item], order: list[tuple[str, int]]) -> None:
    """The scaling benchmarks reordered in place to the session's order; every other item keeps its place."""
    slots = [i for i, item in enumerate(items) if item.get_closest_marker(MARKER)]
    ordered = sorted((items[i] for i in slots), key=lambda item: order.index(_key(item)))
    for slot, item in zip(slots, ordered):
        items[slot] = item


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    shell = shell_of(config)
    outcome = shell.session.conclude() if shell.session is not None else None
    if outcome is not None:
        output_json["scaling"] = outcome.saved_json()
        output_json["scaling"]["report_md"] = Path(outcome.files["report"]).read_text()   # for the dashboard
        if shell.session.ab is not None:
            output_json["scaling"]["ab"] = {**shell.session.ab.describe(), "side": "working tree"}
            _save_ref_run(config, shell, output_json)
    if shell.levers is not None:
        output_json["lever_study"] = {**shell.levers.as_json(), "config": shell.levers.config().as_json()}


def _save_ref_run(config: pytest.Config, shell: SuiteShell, output_json: dict) -> None:
    """REF's launches as their own saved run: in the storage when this run is saved there (just before it,
    so run ids follow the code's order), and in the results directory."""
    session = shell.session
    ref_json = bench_storage.ref_saved_run(output_json, session.ab, session.config().as_json(),
                                                launch_summary)
    ref_json["scaling"]["analysis"] = session.conclude().reference_analysis
    (Path(session.opts.outputs.results_dir) / "ab_ref_run.json").write_text(json.dumps(ref_json, indent=1))
    if bench_storage.saves(config) and not shell.ref_saved:
        shell.ref_saved = True
        bench_storage.save_run(config, ref_json, f"ref-{session.ab.code.commit[:12]}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """Before pytest-benchmark saves and tabulates: only benchmarks that measured a round, an interrupted one
    with its finished launches. After: the summaries, the lever study's report, and the exit status (1 when
    the gate found a regression, 4 when it refused to compare), also after an interruption."""
    shell = shell_of(session.config)
    if shell.session is not None:
        bench_storage.keep_measured(session.config, _finished_summary(shell))
    result = yield
    if shell.session is not None:
        _finish_scaling(session, shell)
    if shell.levers is not None:
        _finish_levers(shell)
    return result


def _finished_summary(shell: SuiteShell):
    def summary_of(key: tuple[str, int]) -> dict | None:
        finished = [launch for launch in shell.session.series.get(key, []) if launch.finished]
        return launch_summary(finished) if finished else None
    return summary_of


def _finish_scaling(session: pytest.Session, shell: SuiteShell) -> None:
    outcome = shell.session.conclude()
    if shell.summaries and (outcome is not None or shell.session.interrupted):
        write_summaries(outcome, shell.settings, shell.summaries)
    if outcome is None or session.exitstatus != pytest.ExitCode.OK:
        return
    if outcome.gate is not None and outcome.gate.refused:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    elif outcome.regressed:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _finish_levers(shell: SuiteShell) -> None:
    """REPORT.md and levers.json in the results directory, also after a failed or interrupted value."""
    from lanemodel.outputs.levers_report import write_lever_report

    study = shell.levers
    found, config = study.as_json(), study.config().as_json()
    results = Path(study.opts.outputs.results_dir)
    (results / "levers.json").write_text(json.dumps({**found, "config": config}, indent=1))
    write_lever_report(found, config, results)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    shell = shell_of(config)
    sections = []
    if config.getoption("lanebench_performance"):
        sections.append(("DDP performance targets (ratios: candidate / reference, 95% interval)",
                         performance_lines(bench_storage.current_benchmarks(config))))
    outcome = shell.session.conclude() if shell.session is not None else None
    if outcome is not None:
        sections.append(("DDP scaling", summary_lines(outcome)))
    if shell.levers is not None:
        sections.append(("DDP levers (value / default, 95% interval; loss difference, 90% interval)",
                         lever_lines(shell.levers.as_json(), Path(shell.levers.opts.outputs.results_dir))))
    for title, lines in sections:
        if lines:
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(line)
