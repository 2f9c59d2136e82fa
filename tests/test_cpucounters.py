"""The kernel's view of a step: CPU time, waiting for a core, context switches."""
import os
import subprocess
import sys
import time

import pytest

from lanemodel.records import StepRecord
from lanemodel.training import cpucounters


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def busy_cpu(seconds: float) -> None:
    """Spin until this thread has used ``seconds`` of CPU, however long other processes make that take."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_busy_main_thread_is_counted_as_main_thread_cpu():
    before = cpucounters.sample()
    busy_cpu(0.2)
    fields = cpucounters.step_fields(before, cpucounters.sample())
    assert 0.2 <= fields["main_thread_cpu_time"] <= fields["cpu_time"] + 0.01
    assert fields["run_queue_wait"] is not None and fields["run_queue_wait"] >= 0


def test_sleeping_is_a_voluntary_context_switch_and_no_cpu():
    before = cpucounters.sample()
    for _ in range(5):
        time.sleep(0.01)
    fields = cpucounters.step_fields(before, cpucounters.sample())
    assert fields["ctx_switches_voluntary"] >= 5
    assert fields["main_thread_cpu_time"] < 0.03


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_sharing_one_core_with_two_busy_processes_shows_as_run_queue_wait():
    """Three busy processes on one core: each runs about a third of the time, so this one waits for the
    core well over a fifth of the wall time (4 ranks on 2 cores is the same situation)."""
    core = {sorted(os.sched_getaffinity(0))[0]}
    hog = f"import os, time\nos.sched_setaffinity(0, {core!r})\nend = time.time() + 3\nwhile time.time() < end: pass"
    hogs = [subprocess.Popen([sys.executable, "-c", hog]) for _ in range(2)]
    previous = os.sched_getaffinity(0)
    try:
        time.sleep(0.3)
        os.sched_setaffinity(0, core)
        before, started = cpucounters.sample(), time.perf_counter()
        busy(1.0)
        fields = cpucounters.step_fields(before, cpucounters.sample())
        wall = time.perf_counter() - started
    finally:
        os.sched_setaffinity(0, previous)
        for hog in hogs:
            hog.kill()
            hog.wait(timeout=10)
    assert fields["run_queue_wait"] > 0.2 * wall
    assert fields["main_thread_run_queue_wait"] > 0.2 * wall     # the busy thread is the one that waited
    assert fields["cpu_time"] < 0.8 * wall
    assert fields["ctx_switches_involuntary"] >= 1


def test_a_missing_proc_gives_none_not_an_error(monkeypatch):
    monkeypatch.setattr(cpucounters, "TASKS", "/nonexistent/task")
    sample = cpucounters.sample()
    assert sample.run_delay is None
    assert cpucounters.step_fields(sample, sample)["run_queue_wait"] is None


def test_records_without_the_cpu_fields_still_load():
    """A version 2 record (before the CPU fields) reads with them as None; a record lacking a study field
    does not."""
    old = {"step": 0, "loss": 1.0, "batch_size": 4, "global_batch_size": 8, "lr": 0.1, "step_time": 0.2,
           "total_elapsed": 0.2, "start_time": 1.0, "end_time": 1.2, "data_time": 0.0, "forward_time": 0.1,
           "backward_time": 0.1, "comm_time": None, "comm_exposed_time": None, "comm_buckets": None,
           "optimizer_time": 0.0, "rank": 0, "world_size": 2}
    record = StepRecord.from_dict(old)
    assert record.cpu_time is None and record.run_queue_wait is None
    assert StepRecord.from_dict({**old, "cpu_time": 0.3}).cpu_time == 0.3
    with pytest.raises(ValueError, match="lacks loss"):
        StepRecord.from_dict({k: v for k, v in old.items() if k != "loss"})


def test_max_rss_is_in_megabytes():
    assert 10 < cpucounters.max_rss_mb() < 100_000
