"""What the kernel says about this process during one step: CPU time, time runnable but waiting for a core,
context switches.

They split a step's "compute" into work done on a core and waiting for one (ranks that share cores), and
show the CPU spent outside the main thread (gloo's all-reduce threads, autograd and intra-op workers).
Sources: ``time.process_time`` (all threads), ``time.thread_time`` (the calling, main thread),
``/proc/self/task/*/schedstat`` (run delay of every thread, Linux) and ``getrusage`` (context switches of
the whole process). A source the kernel does not offer gives None, never an error.
"""
from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

TASKS = "/proc/self/task"


@dataclass(frozen=True)
class CpuSample:
    cpu_time: float                 # seconds, every thread of the process
    main_thread_cpu_time: float     # seconds, the thread that took the sample
    run_delay: float | None         # seconds the process's threads were runnable but not running
    main_thread_run_delay: float | None   # the same for the thread that took the sample
    voluntary: int                  # context switches: waits (locks, I/O, sleeps)
    involuntary: int                # context switches: preempted by the scheduler


def run_delay() -> float | None:
    """Sum of every thread's run-queue wait so far (schedstat's second field, ns), or None off Linux."""
    total = 0
    try:
        tasks = os.listdir(TASKS)
    except OSError:
        return None
    for task in tasks:
        try:
            with open(f"{TASKS}/{task}/schedstat", "rb") as stat:
                total += int(stat.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue            # a thread that ended between listing and reading
    return total / 1e9


def own_run_delay() -> float | None:
    """The calling thread's run-queue wait so far, or None off Linux."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def sample() -> CpuSample:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return CpuSample(time.process_time(), time.thread_time(), run_delay(), own_run_delay(), usage.ru_nvcsw,
                     usage.ru_nivcsw)


def step_fields(before: CpuSample, after: CpuSample) -> dict[str, float | int | None]:
    """The step record's CPU fields between two samples. The run delay of threads that ended in between
    leaves the sum, so a negative difference is clamped to 0."""
    def delta(first: float | None, second: float | None) -> float | None:
        return None if first is None or second is None else max(second - first, 0.0)

    return {"cpu_time": after.cpu_time - before.cpu_time,
            "main_thread_cpu_time": after.main_thread_cpu_time - before.main_thread_cpu_time,
            "run_queue_wait": delta(before.run_delay, after.run_delay),
            "main_thread_run_queue_wait": delta(before.main_thread_run_delay, after.main_thread_run_delay),
            "ctx_switches_voluntary": after.voluntary - before.voluntary,
            "ctx_switches_involuntary": after.involuntary - before.involuntary}


def max_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def shared_rss_mb() -> float | None:
    """Resident memory of this process backed by files and shared memory (its libraries' pages): a memory
    cgroup holds those once for every process that maps them, the rest of the peak once per process."""
    try:
        status = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    kib = {line.split(":")[0]: int(line.split()[1]) for line in status if line.startswith(("RssFile:", "RssShmem:"))}
    return sum(kib.values()) / 1024.0 if kib else None
