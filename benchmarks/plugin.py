"""pytest plugin of the suite: parametrizes the scaling benchmarks, runs launches, and at the end of
the session analyses the curve, draws the plots, writes the report and applies the regression gate."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import suite
from benchmarks.gate import BaselineError, check_comparable, load_baseline
from benchmarks.options import SuiteOptions, add_options, check_batch_splits, read_options

MARKER = "scaling_benchmark"
PERFORMANCE_MARKER = "performance"
XDIST_REFUSAL = ("the DDP scaling benchmarks cannot run under pytest-xdist: launches running side by side "
                 "would share the cores and skew every number. Run them without -n.")
SUITE_DIR = Path(__file__).resolve().parent


class SuiteState:
    """What one pytest session measured, and what it concluded (computed once, on first request)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self._options: SuiteOptions | None = None
        self.docs: dict[tuple[str, int], list[dict]] = {}
        self.baseline: dict | None = None
        self.baseline_name = ""
        self.outcome: suite.SuiteOutcome | None = None

    @property
    def options(self) -> SuiteOptions:
        if self._options is None:
            self._options = read_options(self.config)
        return self._options

    def finish(self) -> suite.SuiteOutcome | None:
        if self.outcome is None and self.docs:
            self.outcome = suite.conclude(self.docs, self.options, self.current_benchmarks(), self.baseline,
                                            self.baseline_name)
        return self.outcome

    def current_benchmarks(self) -> list[dict]:
        session = getattr(self.config, "_benchmarksession", None)
        if session is None:
            return []
        return [{"name": b.name, "fullname": b.fullname, "extra_info": b.extra_info} for b in session.benchmarks]


STATE_KEY = pytest.StashKey[SuiteState]()


def state_of(config: pytest.Config) -> SuiteState:
    return config.stash[STATE_KEY]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a DDP scaling benchmark (one world size, several launches)")
    config.addinivalue_line("markers", f"{PERFORMANCE_MARKER}: performance targets, selected with --performance")
    config.stash[STATE_KEY] = SuiteState(config)
    if config.getoption("numprocesses", None) and not hasattr(config, "workerinput") and _asks_for_suite(config):
        raise pytest.UsageError(XDIST_REFUSAL)


def _asks_for_suite(config: pytest.Config) -> bool:
    for arg in config.args:
        path = (Path(config.invocation_params.dir) / arg.split("::")[0]).resolve()
        if path == SUITE_DIR or SUITE_DIR in path.parents or path in SUITE_DIR.parents:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
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
    check_batch_splits(state.options)
    state.baseline, state.baseline_name = _resolve_baseline(config, state.options)
    if state.baseline is not None:
        try:
            check_comparable(state.baseline, suite.run_config(state.options), state.baseline_name)
        except BaselineError as exc:
            raise pytest.UsageError(str(exc)) from None


def _select_group(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The scaling group by default; the performance group alone with --performance."""
    performance = config.getoption("lanebench_performance")

    def in_other_group(item: pytest.Item) -> bool:
        if item.get_closest_marker(PERFORMANCE_MARKER):
            return not performance
        return performance and item.get_closest_marker(MARKER) is not None

    drop = [item for item in items if in_other_group(item)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if not in_other_group(item)]


def _resolve_baseline(config: pytest.Config, opts: SuiteOptions) -> tuple[dict | None, str]:
    """--scaling-baseline (a path, or a name in the storage), else the file --benchmark-compare chose."""
    bench_session = getattr(config, "_benchmarksession", None)
    try:
        if opts.scaling_baseline:
            path = Path(opts.scaling_baseline)
            if not path.exists() and bench_session is not None and path.suffix != ".json":
                found = list(bench_session.storage.load(opts.scaling_baseline))
                if not found:
                    raise BaselineError(f"no saved benchmark run matches --scaling-baseline "
                                        f"{opts.scaling_baseline!r} in {bench_session.storage}")
                path = bench_session.storage.path / found[-1][0]
            return load_baseline(path), str(path)
        if bench_session is not None and bench_session.compared_mapping:
            path = bench_session.storage.path / list(bench_session.compared_mapping)[-1]
            return load_baseline(path), str(path)
    except BaselineError as exc:
        raise pytest.UsageError(str(exc)) from None
    return None, ""


@pytest.fixture(scope="session")
def suite_options(request: pytest.FixtureRequest) -> SuiteOptions:
    return state_of(request.config).options


@pytest.fixture(scope="session")
def lane_data(suite_options: SuiteOptions) -> Path:
    """The synthetic TuSimple-format data set the benchmarks train on, made once and reused."""
    return suite.prepare_results_dir(suite_options)


@pytest.fixture(scope="session")
def perf_runner(suite_options: SuiteOptions, lane_data: Path):
    from benchmarks.performance import PerformanceRunner

    return PerformanceRunner(suite_options, lane_data)


@pytest.fixture
def run_launch(request: pytest.FixtureRequest, suite_options: SuiteOptions, lane_data: Path):
    """Callable(world_size, policy) -> one launch's metrics document, kept for the session's analysis."""
    state = state_of(request.config)

    def launch(world_size: int, policy: str) -> dict:
        launches = state.docs.setdefault((policy, world_size), [])
        name = suite.launch_name(policy, world_size, len(launches))
        doc, error = suite.run_one_launch(suite_options, suite.train_config(suite_options, lane_data), policy,
                                          world_size, name)
        launches.append(doc)
        if error:
            pytest.fail(error, pytrace=False)
        return doc

    return launch


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    state = state_of(config)
    outcome = state.finish()
    if outcome is not None:
        output_json["scaling"] = outcome.saved_json()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    outcome = state_of(session.config).finish()
    if outcome is not None and outcome.regressed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    outcome = state_of(config).finish()
    if outcome is None:
        return
    terminalreporter.section("DDP scaling")
    for line in outcome.summary_lines():
        terminalreporter.write_line(line)
