"""Per-step records: one JSON line per step per rank, flushed at once so a crash loses no finished step."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import IO

from lanemodel.records import StepRecord

ENV_LAUNCH_TIME = "LANEBENCH_LAUNCH_TIME"   # set by the launcher: when it started the ranks (Unix s)


def records_path(records_dir: str | Path, rank: int) -> Path:
    return Path(records_dir) / f"rank{rank}.jsonl"


def meta_path(records_dir: str | Path, rank: int) -> Path:
    return Path(records_dir) / f"rank{rank}.meta.json"


def error_path(records_dir: str | Path, rank: int) -> Path:
    """Where a failing rank leaves its exception and traceback for the launcher to report."""
    return Path(records_dir) / f"rank{rank}.error.json"


class StepRecorder:
    """Appends StepRecords to this rank's JSON-lines file."""

    def __init__(self, records_dir: str | Path, rank: int):
        self.path = records_path(records_dir, rank)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = self.path.open("a", encoding="utf-8")

    def write(self, record: StepRecord) -> None:
        self._file.write(json.dumps(asdict(record)) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> StepRecorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_rank_meta(records_dir: str | Path, rank: int, meta: dict) -> None:
    path = meta_path(records_dir, rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=1, sort_keys=True))


def read_jsonl(path: Path) -> list[dict]:
    """Records of one rank; a torn last line (the rank died mid-write) is dropped, not fatal."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records
