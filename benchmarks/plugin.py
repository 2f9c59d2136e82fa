"""pytest plugin of the suite: parametrizes the scaling benchmarks, runs launches (more of them where the
gate cannot decide yet), and at the end of the session analyses the curve, draws the plots, writes the
report and applies the regression gate."""
from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from benchmarks import suite
from benchmarks.abtest import CURRENT, REF, ABSession, ref_saved_run
from benchmarks.options import add_options, gate_settings, read_options
from lanemodel.analysis.claims import probes_from
from lanemodel.analysis.gate import (
    BaselineError,
    GateSettings,
    GateSettingsError,
    Series,
    check_comparable,
    compare,
    describe_keys,
    load_baseline,
    metrics_gated,
    more_launches_needed,
    series_from_benchmarks,
)
from lanemodel.analysis.history import SavedRun, comparable_runs, compare_with_history, load_runs
from lanemodel.analysis.outcome import SuiteOutcome
from lanemodel.engine.progress import Progress
from lanemodel.outputs.table import performance_lines, summary_lines
from lanemodel.records import READABLE_VERSIONS, Launch, LaunchSeries, launch_name
from lanemodel.settings import SettingsError, SweepSettings, check_batch_splits, look_sizes

MARKER = "scaling_benchmark"
PERFORMANCE_MARKER = "performance"
CALIBRATION_MARKER = "gate_calibration"
PROBE_MARKER = "scaling_probe"
XDIST_REFUSAL = ("the DDP scaling benchmarks cannot run under pytest-xdist: launches running side by side "
                 "would share the cores and skew every number. Run them without -n.")
SUITE_DIR = Path(__file__).resolve().parent


class SuiteState:
    """What one pytest session measured, and what it concluded (computed once, on first request)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self._options: SweepSettings | None = None
        self._gate: GateSettings | None = None
        self.series: LaunchSeries = {}
        self.baseline: dict | None = None
        self.baseline_series: dict[tuple[str, int], Series] = {}
        self.baseline_name = ""
        self.planned: set[tuple[str, int]] = set()
        self.extra_launches: list[str] = []
        self.extra_seconds = 0.0
        self.progress: Progress | None = None
        self.outcome: SuiteOutcome | None = None
        self.ab: ABSession | None = None          # --scaling-ab: REF's code and launches
        self.cleanup = ExitStack()                # REF's worktree, removed when the session ends
        self.ref_saved = False
        self.history: list[SavedRun] = []         # --scaling-history: the last N comparable saved runs
        self.rank_alone: LaunchSeries = {}         # the batch-splitting probe, keyed by the world size it stands for
        self.bandwidth: dict = {}                  # the memory-bandwidth probe
        self.traces: dict[str, str] = {}           # --profile-steps: torch.profiler trace per rank
        self.nodes = None                          # --nodes K: the emulated nodes (engine.netns.EmulatedNodes)

    @property
    def options(self) -> SweepSettings:
        if self._options is None:
            self._options = read_options(self.config)
        return self._options

    @property
    def gate(self) -> GateSettings:
        if self._gate is None:
            try:
                self._gate = gate_settings(self.options)
            except GateSettingsError as exc:
                raise pytest.UsageError(str(exc)) from None
        return self._gate

    def finish(self) -> SuiteOutcome | None:
        if self.outcome is None and self.series:
            self.outcome = suite.conclude(self.series, self.options, self.gate, self.current_benchmarks(),
                                          self.judge(), self.baseline, self.baseline_name, self.extra_launches,
                                          probes_from(self.rank_alone, self.bandwidth), self.traces)
        return self.outcome

    def judge(self) -> suite.Judge | None:
        """The gate against what this run is compared with: REF's interleaved launches (paired), the
        history of saved runs, or one saved baseline; None when there is nothing to compare with."""
        if self.ab is not None:
            ref = self.ab.ref_series()
            return lambda current: compare(current, ref, self.gate, paired=True)
        if self.history:
            return lambda current: compare_with_history(current, self.history, self.gate)
        if self.baseline is not None:
            return lambda current: compare(current, self.baseline_series, self.gate)
        return None

    def compared_with(self) -> tuple[dict[tuple[str, int], Series], bool, set[tuple[str, int]]]:
        """(what the gate compares this run with, whether it is paired, the keys it will gate)."""
        if self.ab is not None:
            return self.ab.ref_series(), True, self.planned
        return self.baseline_series, False, self.planned & set(self.baseline_series)

    def current_benchmarks(self) -> list[dict]:
        session = getattr(self.config, "_benchmarksession", None)
        if session is None:
            return []
        return [{"name": b.name, "fullname": b.fullname, "extra_info": b.extra_info} for b in session.benchmarks]

    def current_series(self, policy: str, world_size: int) -> Series | None:
        launches = [launch for launch in self.series.get((policy, world_size), []) if launch.finished]
        if not launches:
            return None
        return Series(policy, world_size, launches[0].global_batch_size,
                      tuple(launch.kept_step_times for launch in launches if launch.kept_step_times))


STATE_KEY = pytest.StashKey[SuiteState]()


def state_of(config: pytest.Config) -> SuiteState:
    return config.stash[STATE_KEY]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a DDP scaling benchmark (one world size, several launches)")
    config.addinivalue_line("markers", f"{PERFORMANCE_MARKER}: performance targets, selected with --performance")
    config.addinivalue_line("markers", f"{CALIBRATION_MARKER}: the gate's error rates, selected with "
                                       "--gate-calibration")
    config.addinivalue_line("markers", f"{PROBE_MARKER}: a cause probe run with the scaling group")
    state = config.stash[STATE_KEY] = SuiteState(config)
    if not _asks_for_suite(config):
        return
    if config.getoption("numprocesses", None) and not hasattr(config, "workerinput"):
        raise pytest.UsageError(XDIST_REFUSAL)
    state.options  # noqa: B018  (bad options are a usage error now, before collection or any launch)
    state.gate  # noqa: B018


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
    state.planned = {(policy, ws) for policy in opts.threads for ws in opts.world_sizes}
    sides = 2 if opts.scaling_ab else 1        # with --scaling-ab every launch has a REF twin
    state.progress = _progress(config, opts.steps, sides * len(state.planned) * (opts.rounds + opts.warmup_launches))
    if opts.nodes > 1:
        state.nodes = _make_nodes(state, opts)
    if opts.scaling_ab:
        state.ab = _check_out_ref(state, opts)
        state.baseline_name = f"{state.ab.code.label}, interleaved in this session"
        return
    if opts.scaling_history:
        state.history = _history(config, opts)
        state.baseline_name = (f"the last {len(state.history)} comparable saved runs "
                               f"({state.history[0].run_id} .. {state.history[-1].run_id})")
        return
    state.baseline, state.baseline_name = _resolve_baseline(config, opts)
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


def _make_nodes(state: SuiteState, opts: SweepSettings):
    """The emulated nodes every launch of the session runs on; removed when the session ends (also on Ctrl-C
    or SIGTERM). Without root: a usage error before anything starts."""
    from lanemodel.engine.launcher import terminate_as_interrupt
    from lanemodel.engine.netns import NodesError, emulated_nodes

    try:
        state.cleanup.enter_context(terminate_as_interrupt())
        return state.cleanup.enter_context(emulated_nodes(opts.nodes, opts.link_gbit))
    except NodesError as exc:
        state.cleanup.close()
        raise pytest.UsageError(str(exc)) from None


def _check_out_ref(state: SuiteState, opts: SweepSettings) -> ABSession:
    """REF in a temporary worktree (removed at the end of the session), refused before any launch when its
    code cannot serve this run's launches."""
    from dataclasses import asdict

    from lanemodel.engine.launcher import terminate_as_interrupt
    from lanemodel.engine.worktree import RefError, check_serves, checkout
    from lanemodel.training.config import TrainConfig

    state.cleanup.enter_context(terminate_as_interrupt())   # SIGTERM unwinds pytest, so the worktree goes too
    try:
        code = state.cleanup.enter_context(checkout(state.config.rootpath, opts.scaling_ab))
        config = asdict(suite.train_config(opts, Path(opts.results_dir) / "data"))
        defaults = {name: f.default for name, f in TrainConfig.__dataclass_fields__.items()}
        code = check_serves(code, READABLE_VERSIONS, config, defaults)
    except RefError as exc:
        state.cleanup.close()
        raise pytest.UsageError(str(exc)) from None
    return ABSession(code, seed=time.time_ns() % 2**32)


def _history(config: pytest.Config, opts: SweepSettings) -> list[SavedRun]:
    """The last --scaling-history N saved runs measured like this one; fewer than 2 is a usage error."""
    session = getattr(config, "_benchmarksession", None)
    if session is None or not hasattr(session.storage, "path"):
        raise pytest.UsageError("--scaling-history reads pytest-benchmark's file storage, which this session has not")
    try:
        runs, _ = load_runs(Path(session.storage.path))
    except BaselineError as exc:
        raise pytest.UsageError(f"--scaling-history: {exc}") from None
    kept, others = comparable_runs(runs, suite.run_config(opts))
    if len(kept) < 2:
        raise pytest.UsageError(
            f"--scaling-history {opts.scaling_history}: {len(kept)} saved run(s) in {session.storage.path} were "
            f"measured like this one; at least 2 are needed" + "".join(f"\n  {note}" for note in others))
    return kept[-opts.scaling_history:]


def _progress(config: pytest.Config, steps: int, launches: int) -> Progress:
    """Progress lines through pytest's terminal writer (they show while the test's output is captured):
    one updating line on a terminal, one line per launch in a log; nothing with -qq."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.get_verbosity() < -1:
        return Progress(steps, launches, lambda text: None, live=False)

    def write(text: str) -> None:
        if text.startswith("\r"):
            reporter.write(text, flush=True)
        else:
            reporter.ensure_newline()
            reporter.write(text + "\n", flush=True)

    return Progress(steps, launches, write, live=reporter.isatty)


def _select_group(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The scaling group by default; the performance group with --performance; calibration alone."""
    performance = config.getoption("lanebench_performance")
    calibration = (config.getoption("lanebench_calibration") is not None
                   or config.getoption("lanebench_calibration_ab") is not None)

    def in_other_group(item: pytest.Item) -> bool:
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


def _resolve_baseline(config: pytest.Config, opts: SweepSettings) -> tuple[dict | None, str]:
    """--scaling-baseline (a path, or a name in the storage), else the file --benchmark-compare chose."""
    bench_session = getattr(config, "_benchmarksession", None)
    try:
        if opts.scaling_baseline:
            path = Path(opts.scaling_baseline)
            if not path.exists() and bench_session is not None and path.suffix != ".json":
                # a run id ("0001") or a saved name ("main", stored as "0001_main.json")
                found = (list(bench_session.storage.load(opts.scaling_baseline))
                         or list(bench_session.storage.load(f"*_{opts.scaling_baseline}")))
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
def suite_options(request: pytest.FixtureRequest) -> SweepSettings:
    return state_of(request.config).options


@pytest.fixture(scope="session")
def lane_data(suite_options: SweepSettings) -> Path:
    """The synthetic TuSimple-format data set the benchmarks train on, made once and reused."""
    return suite.prepare_results_dir(suite_options)


@pytest.fixture(scope="session")
def perf_runner(suite_options: SweepSettings, lane_data: Path):
    from benchmarks.performance import PerformanceRunner

    return PerformanceRunner(suite_options, lane_data)


@pytest.fixture
def run_launch(request: pytest.FixtureRequest, suite_options: SweepSettings, lane_data: Path):
    """Callable(world_size, policy, warmup=False, side=CURRENT) -> one launch, kept for the session's analysis
    unless it is a warm-up launch (run, saved as ..._warmup, never in the statistics); a failed launch fails
    the test. ``side`` REF runs REF's code (--scaling-ab); its metrics go to <results>/ab_ref."""
    state = state_of(request.config)
    progress = state.progress or Progress(suite_options.steps, suite_options.rounds)

    def launch(world_size: int, policy: str, warmup: bool = False, side: str = CURRENT) -> Launch:
        key = (policy, world_size)
        ref = side == REF and state.ab is not None
        launches = (state.ab.series if ref else state.series).setdefault(key, [])
        index = len(launches)
        name = launch_name(policy, world_size, index) if not warmup else f"{policy}_ws{world_size}_warmup"
        started = time.perf_counter()
        with progress.launch(world_size, index, max(suite_options.rounds, index + 1), warmup,
                             "REF " if ref else "") as on_step:
            result, error = suite.run_one_launch(suite_options, suite.train_config(suite_options, lane_data),
                                                 policy, world_size, name, on_step=on_step,
                                                 code=state.ab.code if ref else None, nodes=state.nodes)
        if state.ab is not None and not warmup:
            state.ab.record(key, side, result, time.perf_counter() - started)
        if not warmup and not ref:
            launches.append(result)
        if error:
            pytest.fail(error, pytrace=False)
        return result

    return launch


@pytest.fixture
def probe_causes(request: pytest.FixtureRequest, suite_options: SweepSettings, lane_data: Path):
    """Callable(world_size, policy): the batch-splitting probe (one rank alone at this world size's per-rank
    batch and thread budget), unless probes are off or this is an A/B run; a failed probe fails the test."""
    state = state_of(request.config)

    def probe(world_size: int, policy: str) -> None:
        if not suite_options.probes or suite_options.scaling_ab or world_size == 1:
            return
        progress = state.progress or Progress(suite_options.steps, 1)
        with progress.launch(world_size, 0, 1, side="rank-alone probe ") as on_step:
            launch, error = suite.run_rank_alone(suite_options, suite.train_config(suite_options, lane_data),
                                                 policy, world_size, on_step=on_step)
        state.rank_alone.setdefault((policy, world_size), []).append(launch)
        if error:
            pytest.fail(error, pytrace=False)

    return probe


@pytest.fixture
def profile_launch(request: pytest.FixtureRequest, suite_options: SweepSettings, lane_data: Path):
    """Callable(world_size, policy): with --profile-steps K, one more launch (outside the statistics) that
    writes a torch.profiler trace per rank; a failed one fails the test."""
    state = state_of(request.config)

    def profile(world_size: int, policy: str) -> None:
        if not suite_options.profile_steps:
            return
        progress = state.progress or Progress(suite_options.steps, 1)
        with progress.launch(world_size, 0, 1, side="profiled ") as on_step:
            traces, error = suite.run_profiled(suite_options, suite.train_config(suite_options, lane_data), policy,
                                               world_size, on_step=on_step)
        state.traces.update(traces)
        if error:
            pytest.fail(error, pytrace=False)

    return profile


@pytest.fixture
def measure_bandwidth(request: pytest.FixtureRequest, suite_options: SweepSettings):
    """Callable() -> the memory-bandwidth curve, kept for the report (results/probes/bandwidth.json)."""
    import json

    from lanemodel.engine.bandwidth import bandwidth_curve
    from lanemodel.engine.threads import available_cpus

    state = state_of(request.config)

    def measure() -> dict:
        cpus = available_cpus()
        state.bandwidth = bandwidth_curve(suite.bandwidth_counts(suite_options.world_sizes, len(cpus)), cpus)
        out = Path(suite_options.results_dir) / suite.PROBE_DIR
        out.mkdir(parents=True, exist_ok=True)
        (out / "bandwidth.json").write_text(json.dumps(state.bandwidth, indent=1))
        return state.bandwidth

    return measure


@pytest.fixture
def extend_launches(request: pytest.FixtureRequest, suite_options: SweepSettings, run_launch, ab_block):
    """Callable(benchmark, world_size, policy) -> extra launches, run while the gate cannot decide.

    Launch counts follow ``look_sizes`` (rounds, then doubling up to --scaling-max-rounds); the gate's
    alpha is divided by the number of those looks. Without a baseline, launches are added until the
    median is known to about 1 %, so that the saved run can serve as a precise baseline. Each extra
    launch is timed into the benchmark's statistics like a round.
    """
    state = state_of(request.config)

    def extend(benchmark, world_size: int, policy: str) -> list[Launch]:
        extra: list[Launch] = []
        before, after = ab_block(world_size, policy)
        for target in look_sizes(suite_options.rounds, suite_options.scaling_max_rounds)[1:]:
            current = {key: s for key in state.planned if (s := state.current_series(*key)) is not None}
            compared, paired, gated = state.compared_with()
            reason = more_launches_needed((policy, world_size), current, compared, state.gate, metrics_gated(gated),
                                          paired)
            if not reason:
                break
            if state.extra_seconds >= suite_options.scaling_budget_s:
                state.extra_launches.append(f"world size {world_size} ({policy}): {reason}; no extra launches, "
                                            f"the budget of {suite_options.scaling_budget_s:g} s is spent")
                break
            have = len(state.series[(policy, world_size)])
            state.extra_launches.append(f"world size {world_size} ({policy}): {reason}; launches "
                                        f"{have} -> {target}")
            if state.progress is not None:
                state.progress.total_launches += (target - have) * (2 if state.ab else 1)
                state.progress.note(state.extra_launches[-1])
            for _ in range(target - have):
                block_started = time.perf_counter()
                before()
                started = time.perf_counter()
                extra.append(run_launch(world_size, policy))
                benchmark.stats.update(time.perf_counter() - started)   # one more round of this benchmark
                after()
                state.extra_seconds += time.perf_counter() - block_started
        return extra

    return extend


@pytest.fixture
def ab_block(request: pytest.FixtureRequest, run_launch):
    """Callable(world_size, policy) -> (before, after) around each working-tree launch: with --scaling-ab one
    of them runs a REF launch (the block's order drawn at random, in balanced pairs); else both do nothing."""
    state = state_of(request.config)

    def around(world_size: int, policy: str):
        if state.ab is None:
            return (lambda *a, **k: None), (lambda *a, **k: None)
        return state.ab.block((policy, world_size), lambda: run_launch(world_size, policy, side=REF))

    return around


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    state = state_of(config)
    outcome = state.finish()
    if outcome is not None:
        output_json["scaling"] = outcome.saved_json()
        if state.ab is not None:
            output_json["scaling"]["ab"] = {**state.ab.describe(), "side": "working tree"}
            _save_ref_run(config, state, output_json)


def _save_ref_run(config: pytest.Config, state: SuiteState, output_json: dict) -> None:
    """REF's launches as their own saved run: in the storage when this run is saved there (just before it,
    so run ids follow the code's order), and in the results directory."""
    import json

    ref_json = ref_saved_run(output_json, state.ab, suite.run_config(state.options), suite.launch_summary)
    (Path(state.options.results_dir) / "ab_ref_run.json").write_text(json.dumps(ref_json, indent=1))
    session = getattr(config, "_benchmarksession", None)
    if session is not None and (session.save or session.autosave) and not state.ref_saved:
        state.ref_saved = True
        session.storage.save(ref_json, f"ref-{state.ab.code.commit[:12]}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    outcome = state_of(session.config).finish()
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
