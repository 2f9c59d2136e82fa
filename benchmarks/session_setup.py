"""What a session is compared with and runs on, made before any launch: REF's worktree (--scaling-ab), the
history of saved runs (--scaling-history), a saved baseline, emulated nodes (--nodes). Each is refused
with a usage error naming the problem, and whatever was made is removed when the session ends."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from benchmarks import suite
from benchmarks.abtest import ABSession
from benchmarks.state import SuiteState
from lanemodel.analysis.gate import BaselineError, load_baseline
from lanemodel.analysis.history import SavedRun, comparable_runs, load_runs
from lanemodel.records import READABLE_VERSIONS
from lanemodel.settings import SweepSettings


def make_nodes(state: SuiteState, opts: SweepSettings):
    """The emulated nodes every launch of the session runs on; removed when the session ends (also on Ctrl-C
    or SIGTERM, which the session takes as Ctrl-C). Without root: a usage error before anything starts."""
    from lanemodel.engine.netns import NodesError, emulated_nodes

    try:
        return state.cleanup.enter_context(emulated_nodes(opts.nodes, opts.link_gbit))
    except NodesError as exc:
        state.cleanup.close()
        raise pytest.UsageError(str(exc)) from None


def check_out_ref(state: SuiteState, opts: SweepSettings) -> ABSession:
    """REF in a temporary worktree (removed at the end of the session), refused before any launch when its
    code cannot serve this run's launches."""
    from dataclasses import asdict

    from lanemodel.engine.worktree import RefError, check_serves, checkout
    from lanemodel.training.config import TrainConfig

    try:   # SIGTERM unwinds pytest like Ctrl-C (benchmarks.interruption), so the worktree goes too
        code = state.cleanup.enter_context(checkout(state.config.rootpath, opts.scaling_ab))
        config = asdict(suite.train_config(opts, Path(opts.results_dir) / "data"))
        defaults = {name: f.default for name, f in TrainConfig.__dataclass_fields__.items()}
        code = check_serves(code, READABLE_VERSIONS, config, defaults)
    except RefError as exc:
        state.cleanup.close()
        raise pytest.UsageError(str(exc)) from None
    return ABSession(code, seed=time.time_ns() % 2**32)


def history_runs(config: pytest.Config, opts: SweepSettings) -> list[SavedRun]:
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


def resolve_baseline(config: pytest.Config, opts: SweepSettings) -> tuple[dict | None, str]:
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
