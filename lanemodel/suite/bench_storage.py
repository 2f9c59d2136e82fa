"""The one adapter over pytest-benchmark's session object (``config._benchmarksession``).

pytest-benchmark hands plugins the saved JSON (``pytest_benchmark_update_json``) and the comparison's
results, but no public hook serves what the suite needs besides: the storage to look saved runs up in (a
saved baseline by name, the history), the file ``--benchmark-compare`` chose, saving REF's launches as a run
of their own, this session's benchmarks for the terminal table, and leaving out, before it saves and
tabulates, a benchmark whose test was interrupted before one round (its summary table cannot take it).
Every read of that private attribute is here.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest

from lanemodel.records import SCHEMA_VERSION, Launch
from lanemodel.session.abtest import ABSession
from lanemodel.session.against import SavedRuns


def _session(config: pytest.Config):
    return getattr(config, "_benchmarksession", None)


def saved_runs(config: pytest.Config) -> SavedRuns:
    """The storage as the session looks runs up in it; empty when pytest-benchmark is not active."""
    bench = _session(config)
    if bench is None or not hasattr(bench.storage, "path"):
        return SavedRuns()
    storage = bench.storage
    compared = storage.path / list(bench.compared_mapping)[-1] if bench.compared_mapping else None
    return SavedRuns(Path(storage.path), compared,
                     lambda pattern: [storage.path / file for file, _ in storage.load(pattern)], str(storage))


def current_benchmarks(config: pytest.Config) -> list[dict]:
    """This session's benchmarks as far as they are measured (name, fullname, extra_info)."""
    bench = _session(config)
    if bench is None:
        return []
    return [{"name": b.name, "fullname": b.fullname, "extra_info": b.extra_info} for b in bench.benchmarks]


def keep_measured(config: pytest.Config, summary_of: Callable[[tuple[str, int]], dict | None]) -> None:
    """Before pytest-benchmark saves and tabulates: drop benchmarks that measured no round, and give one
    interrupted after some rounds ``summary_of(key)`` (its finished launches' summary; None: none finished)."""
    bench = _session(config)
    if bench is None:
        return

    def complete(benchmark) -> bool:
        if not benchmark:
            return False
        if benchmark.extra_info or "world_size" not in benchmark.params:
            return True
        summary = summary_of((benchmark.params["thread_policy"], benchmark.params["world_size"]))
        if summary is not None:
            benchmark.extra_info.update({**summary, "partial": True})
        return summary is not None

    bench.benchmarks[:] = [benchmark for benchmark in bench.benchmarks if complete(benchmark)]


def saves(config: pytest.Config) -> bool:
    """Whether this session saves its run in the storage (--benchmark-save or --benchmark-autosave)."""
    bench = _session(config)
    return bench is not None and bool(bench.save or bench.autosave)


def save_run(config: pytest.Config, run: dict, name: str) -> None:
    _session(config).storage.save(run, name)


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
