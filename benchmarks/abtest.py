"""Same-session A/B (``--scaling-ab REF``): REF's launches interleave with the working tree's.

A baseline saved in another session differs from today's run by more than the changes worth catching
(about 4 % between sessions here). Running both versions in one session, in blocks of one launch each
whose order is drawn at random in balanced pairs (REF-first then working-tree-first, or the reverse),
cancels that drift: each working-tree launch is compared with the REF launch of its own block (a paired
test, ``lanemodel.analysis.launchstats.PairedGroups``).
"""
from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from lanemodel.analysis.gate import Series
from lanemodel.engine.worktree import RefCode
from lanemodel.records import SCHEMA_VERSION, Launch, LaunchSeries

REF, CURRENT = "ref", "current"


@dataclass
class ABSession:
    """REF's code, its launches, and the order every world size's launches ran in."""

    code: RefCode
    seed: int
    series: LaunchSeries = field(default_factory=dict)
    durations: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    orders: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    _queued: dict[tuple[str, int], list[bool]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def ref_first(self, key: tuple[str, int]) -> bool:
        """Whether the next block of ``key`` runs REF first: blocks come in balanced pairs in random order."""
        queue = self._queued.setdefault(key, [])
        if not queue:
            queue += [True, False] if self._rng.random() < 0.5 else [False, True]
        return queue.pop(0)

    def block(self, key: tuple[str, int], run_ref: Callable[[], object]) -> tuple[Callable[[], None],
                                                                                   Callable[[], None]]:
        """(before, after) around one working-tree launch: REF runs in one of them, by the drawn order."""
        first = []

        def before(*_args, **_kwargs) -> None:
            first[:] = [self.ref_first(key)]
            if first[0]:
                run_ref()

        def after(*_args, **_kwargs) -> None:
            if not first[0]:
                run_ref()
        return before, after

    def record(self, key: tuple[str, int], side: str, launch: Launch, seconds: float) -> None:
        self.orders.setdefault(key, []).append(side)
        if side == REF:
            self.series.setdefault(key, []).append(launch)
            self.durations.setdefault(key, []).append(seconds)

    def ref_series(self) -> dict[tuple[str, int], Series]:
        """REF's finished launches in the gate's form, in the order they ran (pair i with the tree's i)."""
        out = {}
        for (policy, ws), launches in self.series.items():
            finished = [launch for launch in launches if launch.finished and launch.kept_step_times]
            if finished:
                out[(policy, ws)] = Series(policy, ws, finished[0].global_batch_size,
                                           tuple(launch.kept_step_times for launch in finished))
        return out

    def describe(self) -> dict:
        return {"ref": self.code.ref, "commit": self.code.commit, "seed": self.seed,
                "order": {f"{policy} ws{ws}": order for (policy, ws), order in sorted(self.orders.items())}}


def ref_saved_run(output_json: dict, ab: ABSession, config: dict, summarise: Callable[[list[Launch]], dict]) -> dict:
    """REF's launches as a pytest-benchmark run of their own (same machine; REF's commit), so that
    ``pytest-benchmark compare`` and ``ddp-lane-bench compare`` read it like any saved run."""
    from pytest_benchmark.stats import Stats

    ref = copy.deepcopy(output_json)
    ref["commit_info"] = {**output_json.get("commit_info", {}), "id": ab.code.commit, "dirty": False,
                          "branch": ab.code.ref}
    benchmarks = []
    for bench in ref.get("benchmarks", []):
        info = bench.get("extra_info", {})
        key = (str(info.get("threads")), info.get("world_size"))
        launches = [launch for launch in ab.series.get(key, []) if launch.finished]
        if "world_size" not in info or not launches:
            continue
        stats = Stats()
        for seconds in ab.durations[key]:
            stats.update(seconds)
        bench["stats"] = {**stats.as_dict(), "data": list(stats.data), "iterations": 1}
        bench["extra_info"] = {**summarise(launches), "code": {"ref": ab.code.ref, "commit": ab.code.commit}}
        benchmarks.append(bench)
    ref["benchmarks"] = benchmarks
    ref["scaling"] = {"schema_version": SCHEMA_VERSION, "config": config, "analysis": {}, "gate": None,
                      "ab": {**ab.describe(), "side": "REF"}}
    return ref
