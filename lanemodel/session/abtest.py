"""Same-session A/B (``--scaling-ab REF``): REF's launches interleave with the working tree's.

A baseline saved in another session differs from today's run by more than the changes worth catching
(about 4 % between sessions here). Running both versions in one session, in blocks of one launch each
whose order is drawn at random in balanced pairs (REF-first then working-tree-first, or the reverse),
cancels that drift: each working-tree launch is compared with the REF launch of its own block (a paired
test, ``lanemodel.analysis.launchstats.PairedGroups``).
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from lanemodel.analysis.curve import analyse, analysis_json
from lanemodel.analysis.gate import GateResult, GateSettings, Series, compare
from lanemodel.analysis.outcome import Comparison
from lanemodel.engine.worktree import RefCode
from lanemodel.records import Launch, LaunchSeries

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

    def block(self, key: tuple[str, int], run_ref: Callable[[], object], run_current: Callable[[], Launch]) -> Launch:
        """One block: REF's launch and the working tree's, in the drawn order; the working tree's launch."""
        if self.ref_first(key):
            run_ref()
            return run_current()
        launch = run_current()
        run_ref()
        return launch

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

    @property
    def name(self) -> str:
        return f"{self.code.label}, interleaved in this session"

    def judge(self, current: dict[tuple[str, int], Series], gate: GateSettings) -> GateResult:
        """Each working-tree launch against the REF launch of its own block (paired)."""
        return compare(current, self.ref_series(), gate, paired=True)

    def compared_with(self, planned: set[tuple[str, int]]) -> tuple[dict[tuple[str, int], Series], bool,
                                                                    set[tuple[str, int]]]:
        return self.ref_series(), True, planned

    def comparison(self) -> Comparison:
        """REF named for the summary (a commit id names itself), with its curve for the plots."""
        finished = {key: [launch for launch in launches if launch.finished] for key, launches in self.series.items()}
        finished = {key: launches for key, launches in finished.items() if launches}
        named = "" if self.code.commit.startswith(self.code.ref) else f"{self.code.ref}@"
        return Comparison(f"{named}{self.code.commit[:7]}", "REF", f"--scaling-ab {self.code.ref}",
                          analysis_json(analyse(finished)) if finished else {})
