"""What a session is compared with, made before any launch: a saved baseline, the history of saved runs
(--scaling-history), or REF measured in this session (--scaling-ab, ``session.abtest``). Each is refused with
a SessionError naming the problem.

Every comparand answers the same three questions: its verdicts on this run, what the adaptive launches are
judged against, and how it is named for the summary and drawn in the plots.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lanemodel.analysis.gate import (
    BaselineError,
    GateResult,
    GateSettings,
    Series,
    check_comparable,
    compare,
    describe_keys,
    load_baseline,
    series_from_benchmarks,
)
from lanemodel.analysis.history import SavedRun, comparable_runs, compare_with_history, load_runs
from lanemodel.analysis.outcome import Comparison
from lanemodel.records import READABLE_VERSIONS, RunConfig
from lanemodel.session.abtest import ABSession
from lanemodel.session.errors import SessionError
from lanemodel.session.runs import train_config
from lanemodel.settings import SweepSettings

Key = tuple[str, int]


@dataclass(frozen=True)
class SavedRuns:
    """Where saved runs are, as the caller knows them: the storage directory (pytest-benchmark's file storage),
    the file its --benchmark-compare chose, and a lookup of saved files by run id or name pattern."""

    path: Path | None = None
    compared: Path | None = None
    find: Callable[[str], list[Path]] = field(default=lambda pattern: [])
    label: str = ""


@dataclass
class Baseline:
    """One saved run, compared as an independent sample (its session's offset in the gate's noise)."""

    doc: dict
    name: str
    series: dict[Key, Series]

    def judge(self, current: dict[Key, Series], gate: GateSettings) -> GateResult:
        return compare(current, self.series, gate)

    def compared_with(self, planned: set[Key]) -> tuple[dict[Key, Series], bool, set[Key]]:
        """(what the adaptive launches are judged against, paired, the keys gated)."""
        return self.series, False, planned & set(self.series)

    def comparison(self) -> Comparison:
        return Comparison(Path(self.name).stem, "baseline", f"--scaling-baseline {self.name}",
                          self.doc.get("scaling", {}).get("analysis", {}))


MIN_HISTORY_RUNS = 2      # runs whose spread can stand for the noise


@dataclass
class History:
    """The last N comparable saved runs: their run-to-run spread is the noise. Only runs of this machine (its CPU
    model and cores) and this configuration are comparable: a CI runner of another CPU model keeps a history of
    its own, and is not gated (it says so) until that history holds two runs."""

    runs: list[SavedRun]
    count: int

    @property
    def name(self) -> str:
        if len(self.runs) < MIN_HISTORY_RUNS:
            return "the history of this machine"
        return f"the last {len(self.runs)} comparable saved runs ({self.runs[0].run_id} .. {self.runs[-1].run_id})"

    def judge(self, current: dict[Key, Series], gate: GateSettings) -> GateResult:
        if len(self.runs) < MIN_HISTORY_RUNS:
            return GateResult([], [f"not gated: {len(self.runs)} comparable saved run(s) on this machine, "
                                   f"{MIN_HISTORY_RUNS} needed (each machine keeps a history of its own)"])
        return compare_with_history(current, self.runs, gate)

    def compared_with(self, planned: set[Key]) -> tuple[dict[Key, Series], bool, set[Key]]:
        return {}, False, set()

    def comparison(self) -> Comparison:
        return Comparison(self.name, "history", f"--scaling-history {self.count}")


def resolve_against(opts: SweepSettings, saved: SavedRuns, planned: set[Key], root: Path,
                    cleanup: ExitStack, config: Callable[[], RunConfig]) -> ABSession | History | Baseline | None:
    """What this run is gated against, by the options; None when nothing is. ``config()``: this run's set-up,
    which a saved run must share to be compared (built when first needed)."""
    if opts.ab.ref:
        return check_out_ref(root, opts, cleanup)
    if opts.gate.history:
        return history_runs(saved, opts, config)
    return resolve_baseline(opts, saved, planned, config)


def check_out_ref(root: Path, opts: SweepSettings, cleanup: ExitStack) -> ABSession:
    """REF in a temporary worktree (removed when ``cleanup`` closes), refused before any launch when its code
    cannot serve this run's launches."""
    from lanemodel.engine.worktree import RefError, check_serves, checkout
    from lanemodel.training.config import TrainConfig

    try:
        code = cleanup.enter_context(checkout(root, opts.ab.ref))
        config = asdict(train_config(opts))
        defaults = {name: f.default for name, f in TrainConfig.__dataclass_fields__.items()}
        code = check_serves(code, READABLE_VERSIONS, config, defaults)
    except RefError as exc:
        raise SessionError(str(exc)) from None
    return ABSession(code, seed=time.time_ns() % 2**32)


def history_runs(saved: SavedRuns, opts: SweepSettings, config: Callable[[], RunConfig]) -> History:
    """The last --scaling-history N saved runs measured like this one, on this machine; fewer than 2 is a history
    that does not gate yet (said in the report), not a refusal."""
    if saved.path is None:
        raise SessionError("--scaling-history reads pytest-benchmark's file storage, which this session has not")
    try:
        runs, _ = load_runs(saved.path) if Path(saved.path).exists() else ([], [])     # the first run saves it
    except BaselineError as exc:
        raise SessionError(f"--scaling-history: {exc}") from None
    kept, _ = comparable_runs(runs, config())
    return History(kept[-opts.gate.history:], opts.gate.history)


def resolve_baseline(opts: SweepSettings, saved: SavedRuns, planned: set[Key],
                     config: Callable[[], RunConfig]) -> Baseline | None:
    """--scaling-baseline (a path, or a run id or name in the storage), else the file --benchmark-compare chose;
    refused when it was measured differently or shares no (threads, world size) with this run."""
    try:
        path = _baseline_path(opts, saved)
        if path is None:
            return None
        doc, name = load_baseline(path), str(path)
        check_comparable(doc, config(), name)
        series = series_from_benchmarks(doc["benchmarks"])
        if not planned & set(series):
            raise BaselineError(
                f"baseline {name} and this run share no (threads, world size): the baseline "
                f"has {describe_keys(series)}, this run measures {describe_keys(planned)}")
    except BaselineError as exc:
        raise SessionError(str(exc)) from None
    return Baseline(doc, name, series)


def _baseline_path(opts: SweepSettings, saved: SavedRuns) -> Path | None:
    if not opts.gate.baseline:
        return saved.compared
    path = Path(opts.gate.baseline)
    if not path.exists() and saved.path is not None and path.suffix != ".json":
        # a run id ("0001") or a saved name ("main", stored as "0001_main.json")
        found = saved.find(opts.gate.baseline) or saved.find(f"*_{opts.gate.baseline}")
        if not found:
            raise BaselineError(f"no saved benchmark run matches --scaling-baseline {opts.gate.baseline!r} "
                                f"in {saved.label}")
        path = found[-1]
    return path
