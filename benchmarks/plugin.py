"""pytest plugin of the suite: parametrizes the scaling benchmarks, runs launches (more of them where the
gate cannot decide yet), and at the end of the session analyses the curve, draws the plots, writes the
report and applies the regression gate."""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest

from benchmarks import suite
from benchmarks.abtest import ref_saved_run
from benchmarks.gate_items import GATE_MARKER, GateItems, compares, gate_cases
from benchmarks.interruption import Interruption
from benchmarks.levers import LEVER_MARKER
from benchmarks.options import add_options
from benchmarks.session_setup import check_out_ref, history_runs, make_nodes, resolve_baseline
from benchmarks.state import STATE_KEY, SuiteState, state_of
from benchmarks.summary_file import summary_targets, write_summaries
from lanemodel.analysis.gate import (
    BaselineError,
    check_comparable,
    describe_keys,
    series_from_benchmarks,
)
from lanemodel.engine.progress import Progress
from lanemodel.outputs.table import performance_lines, summary_lines
from lanemodel.settings import SettingsError, check_batch_splits

MARKER = "scaling_benchmark"
PERFORMANCE_MARKER = "performance"
CALIBRATION_MARKER = "gate_calibration"
PROBE_MARKER = "scaling_probe"
XDIST_REFUSAL = ("the DDP scaling benchmarks cannot run under pytest-xdist: launches running side by side "
                 "would share the cores and skew every number. Run them without -n.")
SUITE_DIR = Path(__file__).resolve().parent


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a DDP scaling benchmark (one world size, several launches)")
    config.addinivalue_line("markers", f"{PERFORMANCE_MARKER}: performance targets, selected with --performance")
    config.addinivalue_line("markers", f"{CALIBRATION_MARKER}: the gate's error rates, selected with "
                                       "--gate-calibration")
    config.addinivalue_line("markers", f"{PROBE_MARKER}: a cause probe run with the scaling group")
    config.addinivalue_line("markers", f"{GATE_MARKER}: one verdict of the regression gate, after the benchmarks")
    state = config.stash[STATE_KEY] = SuiteState(config)
    if not _asks_for_suite(config):
        return
    config.pluginmanager.register(Interruption(state), "lanebench-interruption")
    config.pluginmanager.register(GateItems(MARKER), "lanebench-gate-items")
    if config.getoption("numprocesses", None) and not hasattr(config, "workerinput"):
        raise pytest.UsageError(XDIST_REFUSAL)
    state.options  # noqa: B018  (bad options are a usage error now, before collection or any launch)
    state.gate  # noqa: B018
    state.summaries = summary_targets(state.options)


def pytest_unconfigure(config: pytest.Config) -> None:
    """No process or checkout made for the session outlives it: the fork server, the resource tracker and
    REF's worktree go here (also after a failure or Ctrl-C)."""
    from lanemodel.engine.forkserver import shutdown_fork_server

    shutdown_fork_server()
    state_of(config).cleanup.close()


def _asks_for_suite(config: pytest.Config) -> bool:
    for arg in config.args:
        path = (Path(config.invocation_params.dir) / arg.split("::")[0]).resolve()
        if path == SUITE_DIR or SUITE_DIR in path.parents or path in SUITE_DIR.parents:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker(GATE_MARKER) is not None:
        gates = gate_cases(state_of(metafunc.config).options)
        metafunc.parametrize(("thread_policy", "world_size", "gate_metric"), gates,
                             ids=[f"{p}-ws{ws}-{metric}" for p, ws, metric in gates])
        return
    if metafunc.definition.get_closest_marker(MARKER) is None:
        return
    opts = state_of(metafunc.config).options
    cases = [(policy, ws) for policy in opts.threads for ws in opts.world_sizes]
    metafunc.parametrize(("thread_policy", "world_size"), cases, ids=[f"{p}-ws{ws}" for p, ws in cases])


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    _select_group(config, items)
    if not any(item.get_closest_marker(MARKER) for item in items):
        return
    if hasattr(config, "workerinput"):  # reached when the suite was collected from a path above it
        raise pytest.UsageError(XDIST_REFUSAL)
    state = state_of(config)
    opts = state.options
    try:
        check_batch_splits(opts)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    state.gate  # noqa: B018  (validated now, before any launch)
    if opts.scaling_session_budget_s:
        _largest_first(items, opts.threads)
    state.planned = {(policy, ws) for policy in opts.threads for ws in opts.world_sizes}
    sides = 2 if opts.scaling_ab else 1        # with --scaling-ab every launch has a REF twin
    state.progress = make_progress(config, opts.steps,
                                   sides * len(state.planned) * (opts.rounds + opts.warmup_launches))
    if opts.nodes > 1:
        state.nodes = make_nodes(state, opts)
    if opts.scaling_ab:
        state.ab = check_out_ref(state, opts)
        state.baseline_name = f"{state.ab.code.label}, interleaved in this session"
        return
    if opts.scaling_history:
        state.history = history_runs(config, opts)
        state.baseline_name = (f"the last {len(state.history)} comparable saved runs "
                               f"({state.history[0].run_id} .. {state.history[-1].run_id})")
        return
    state.baseline, state.baseline_name = resolve_baseline(config, opts)
    if state.baseline is not None:
        try:
            check_comparable(state.baseline, suite.run_config(opts), state.baseline_name)
            state.baseline_series = series_from_benchmarks(state.baseline["benchmarks"])
            if not state.planned & set(state.baseline_series):
                raise BaselineError(
                    f"baseline {state.baseline_name} and this run share no (threads, world size): the baseline "
                    f"has {describe_keys(state.baseline_series)}, this run measures {describe_keys(state.planned)}")
        except BaselineError as exc:
            raise pytest.UsageError(str(exc)) from None


def _largest_first(items: list[pytest.Item], policies: tuple[str, ...]) -> None:
    """A planned session measures each policy's world sizes from the largest down (``benchmarks.planning``):
    the scaling benchmarks are reordered in place, every other item keeps its place."""
    slots = [i for i, item in enumerate(items) if item.get_closest_marker(MARKER)]
    ordered = sorted((items[i] for i in slots), key=lambda item: (
        policies.index(item.callspec.params["thread_policy"]), -item.callspec.params["world_size"]))
    for slot, item in zip(slots, ordered):
        items[slot] = item


def make_progress(config: pytest.Config, steps: int, launches: int) -> Progress:
    """Progress lines through pytest's terminal writer, output capture suspended for each (so that they reach a
    CI log while a test runs):
    one updating line on a terminal, one line per launch in a log; nothing with -qq."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or config.get_verbosity() < -1:
        return Progress(steps, launches, lambda text: None, live=False)

    def write(text: str) -> None:
        with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
            if text.startswith("\r"):
                reporter.write(text, flush=True)
            else:
                reporter.ensure_newline()
                reporter.write(text + "\n", flush=True)

    return Progress(steps, launches, write, live=reporter.isatty)


def _select_group(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The scaling group by default (with the gate's items when the session compares); the performance group
    with --performance; calibration alone; the lever study alone with --levers."""
    performance = config.getoption("lanebench_performance")
    calibration = (config.getoption("lanebench_calibration") is not None
                   or config.getoption("lanebench_calibration_ab") is not None)
    gated = not performance and not calibration and compares(config, state_of(config).options)

    levers = bool(state_of(config).options.levers.strip()) and not performance and not calibration

    def in_other_group(item: pytest.Item) -> bool:
        if levers or item.get_closest_marker(LEVER_MARKER):
            return not (levers and item.get_closest_marker(LEVER_MARKER))
        if item.get_closest_marker(GATE_MARKER):
            return not gated
        scaling = item.get_closest_marker(MARKER) is not None or item.get_closest_marker(PROBE_MARKER) is not None
        if item.get_closest_marker(CALIBRATION_MARKER):
            return not calibration
        if calibration:
            return scaling or item.get_closest_marker(PERFORMANCE_MARKER) is not None
        if item.get_closest_marker(PERFORMANCE_MARKER):
            return not performance
        return performance and scaling

    drop = [item for item in items if in_other_group(item)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if not in_other_group(item)]


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    state = state_of(config)
    outcome = state.finish()
    if outcome is not None:
        output_json["scaling"] = outcome.saved_json()
        output_json["scaling"]["report_md"] = Path(outcome.files["report"]).read_text()   # for the dashboard
        if state.ab is not None:
            output_json["scaling"]["ab"] = {**state.ab.describe(), "side": "working tree"}
            _save_ref_run(config, state, output_json)


def _save_ref_run(config: pytest.Config, state: SuiteState, output_json: dict) -> None:
    """REF's launches as their own saved run: in the storage when this run is saved there (just before it,
    so run ids follow the code's order), and in the results directory."""
    import json

    ref_json = ref_saved_run(output_json, state.ab, suite.run_config(state.options), suite.launch_summary)
    ref_json["scaling"]["analysis"] = state.outcome.reference_analysis if state.outcome else {}
    (Path(state.options.results_dir) / "ab_ref_run.json").write_text(json.dumps(ref_json, indent=1))
    session = getattr(config, "_benchmarksession", None)
    if session is not None and (session.save or session.autosave) and not state.ref_saved:
        state.ref_saved = True
        session.storage.save(ref_json, f"ref-{state.ab.code.commit[:12]}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = state_of(session.config)
    outcome = state.finish()
    if state.summaries and (outcome is not None or state.interrupted):
        write_summaries(outcome, state.options, state.summaries)
    if outcome is None or session.exitstatus != pytest.ExitCode.OK:
        return
    if outcome.gate is not None and outcome.gate.refused:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    elif outcome.regressed:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if config.getoption("lanebench_performance"):
        lines = performance_lines(state_of(config).current_benchmarks())
        if lines:
            terminalreporter.section("DDP performance targets (ratios: candidate / reference, 95% interval)")
            for line in lines:
                terminalreporter.write_line(line)
    outcome = state_of(config).finish()
    if outcome is None:
        return
    terminalreporter.section("DDP scaling")
    for line in summary_lines(outcome):
        terminalreporter.write_line(line)
