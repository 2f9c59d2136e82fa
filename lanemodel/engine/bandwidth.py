"""A memory-bandwidth probe: a STREAM-like triad run by 1..K concurrent processes, each pinned to one core.

These guests expose no hardware counters, so whether ranks starve each other of memory bandwidth is
measured directly: if each process's triad rate drops while every process still has a core of its own,
the memory system is the shared resource. Arrays are far larger than the caches (3 x 64 MB).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from lanemodel.engine.interrupts import starting

PROBE_ELEMENTS = 8_000_000        # float64: 64 MB per array
BYTES_PER_ELEMENT = 3 * 8         # STREAM's count for a = b + s * c: two reads, one write
PROBE_TIMEOUT_S = 120

TRIAD = """
import json, os, sys, time
import numpy as np
os.sched_setaffinity(0, {int(sys.argv[1])})
n, seconds = int(sys.argv[2]), float(sys.argv[3])
b, c = np.ones(n), np.full(n, 2.0)
a = np.empty(n)
best, end = 0.0, time.perf_counter() + seconds
while True:
    start = time.perf_counter()
    np.multiply(c, 3.0, out=a)
    np.add(a, b, out=a)
    took = time.perf_counter() - start
    best = max(best, n * 24 / took / 1e9)
    if time.perf_counter() > end:
        break
print(json.dumps({"gbs": best}))
"""


class ProbeError(RuntimeError):
    """A probe process failed or did not finish in time."""


def triad(processes: int, cpus: list[int], seconds: float = 1.0,
          elements: int = PROBE_ELEMENTS) -> list[float]:
    """GB/s of each of ``processes`` concurrent triads (best repetition each), process i pinned to
    cpus[i % len(cpus)]; every process is killed when the probe ends, also on failure."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs: list[subprocess.Popen] = []
    try:
        for i in range(processes):
            with starting():
                procs.append(subprocess.Popen([sys.executable, "-c", TRIAD, str(cpus[i % len(cpus)]), str(elements),
                                               str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                              text=True, env=env))
        rates = []
        for proc in procs:
            out, err = proc.communicate(timeout=PROBE_TIMEOUT_S)
            if proc.returncode != 0:
                raise ProbeError(f"bandwidth probe process exited with {proc.returncode}: {err[-500:]}")
            rates.append(float(json.loads(out.strip().splitlines()[-1])["gbs"]))
        return rates
    except subprocess.TimeoutExpired:
        raise ProbeError(f"bandwidth probe did not finish within {PROBE_TIMEOUT_S} s") from None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def bandwidth_curve(counts: list[int], cpus: list[int], seconds: float = 1.0) -> dict[int, dict]:
    """Per process count: each process's GB/s, their sum, and whether processes outnumber the cores."""
    out = {}
    for count in counts:
        rates = triad(count, cpus, seconds)
        out[count] = {"per_process_gbs": rates, "total_gbs": sum(rates),
                      "mean_per_process_gbs": sum(rates) / len(rates), "shares_cores": count > len(cpus)}
    return out
