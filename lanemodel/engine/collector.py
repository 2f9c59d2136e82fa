"""Merge the ranks' JSON-lines files into one run result: per-step, per-rank, slowest rank per step."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lanemodel.engine.recorder import meta_path, read_jsonl, records_path


@dataclass
class RunResult:
    world_size: int
    records: list[dict]          # every rank's records, sorted by (step, rank)
    metas: list[dict]            # per rank: threads, pid, start-up times
    complete_steps: list[int]    # steps every rank finished

    def __post_init__(self) -> None:
        self._by_step: dict[int, list[dict]] = {}
        for record in self.records:
            self._by_step.setdefault(record["step"], []).append(record)

    def ranks_at(self, step: int) -> list[dict]:
        return self._by_step.get(step, [])

    def step_times(self) -> list[float]:
        """A step's time for the run is its slowest rank's."""
        return [max(r["step_time"] for r in self.ranks_at(step)) for step in self.complete_steps]

    def skew(self) -> list[dict]:
        """Per complete step: spread between fastest and slowest rank, and which rank was slowest."""
        out = []
        for step in self.complete_steps:
            rows = self.ranks_at(step)
            slowest = max(rows, key=lambda r: r["step_time"])
            out.append({"step": step, "skew": slowest["step_time"] - min(r["step_time"] for r in rows),
                        "slowest_rank": slowest["rank"]})
        return out

    def first_step_start(self) -> float | None:
        """When the last rank started step 0: the run's first step begins once every rank is in."""
        starts = [r["start_time"] for r in self.ranks_at(0)]
        return max(starts) if len(starts) == self.world_size else None


def collect(run_dir: str | Path, world_size: int) -> RunResult:
    """Read whatever the ranks wrote, including the steps of a run that failed part way."""
    run_dir = Path(run_dir)
    records, metas = [], []
    for rank in range(world_size):
        path = records_path(run_dir, rank)
        records.extend(read_jsonl(path) if path.exists() else [])
        meta = meta_path(run_dir, rank)
        metas.append(json.loads(meta.read_text()) if meta.exists() else {"rank": rank})
    records.sort(key=lambda r: (r["step"], r["rank"]))
    counts: dict[int, int] = {}
    for r in records:
        counts[r["step"]] = counts.get(r["step"], 0) + 1
    complete = sorted(s for s, n in counts.items() if n == world_size)
    return RunResult(world_size, records, metas, complete)
