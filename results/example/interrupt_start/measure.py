"""How often SIGTERM during a launch's start loop leaves a process running, with and without holding
interrupts while each process starts (``lanemodel.engine.interrupts.starting``).

Each trial runs a child that starts 8 processes through the launcher's ``_start_and_supervise`` and is sent
SIGTERM at a random moment 0-15 ms after it says it is starting them; then the processes still running
are counted (and killed). From the repository root:
``.venv/bin/python results/example/interrupt_start/measure.py 200``.
"""
from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTS_PER_LAUNCH = 8


def launch_until_interrupted(token: str, hold: bool) -> None:
    from lanemodel.engine.interrupts import starting, terminate_as_interrupt
    from lanemodel.engine.launcher import _start_and_supervise

    held = starting if hold else contextlib.nullcontext

    def start(procs: list) -> None:
        for _ in range(STARTS_PER_LAUNCH):
            with held():
                procs.append(subprocess.Popen(["sleep", token], start_new_session=True))

    with terminate_as_interrupt(), tempfile.TemporaryDirectory() as run_dir:
        print("starting", flush=True)
        try:
            _start_and_supervise(start, time.perf_counter() + 60, Path(run_dir), 60, None)
        except KeyboardInterrupt:
            pass


def left_running(token: str) -> int:
    pids = subprocess.run(["pgrep", "-f", f"^sleep {token}$"], capture_output=True, text=True).stdout.split()
    for pid in pids:
        os.kill(int(pid), signal.SIGKILL)
    return len(pids)


def trials(count: int, hold: bool) -> tuple[int, int]:
    """(interrupted launches that left a process, processes left)."""
    rng, launches, processes = random.Random(1), 0, 0
    for trial in range(count):
        token = f"{600 + trial}.{int(hold)}{os.getpid()}"   # a unique sleep length names this trial's processes
        child = subprocess.Popen([sys.executable, __file__, "--child", token, str(int(hold))],
                                 stdout=subprocess.PIPE, text=True)
        child.stdout.readline()
        time.sleep(rng.uniform(0, 0.015))
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)
        time.sleep(0.05)
        left = left_running(token)
        launches, processes = launches + (left > 0), processes + left
    return launches, processes


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        launch_until_interrupted(sys.argv[2], sys.argv[3] == "1")
        sys.exit(0)
    count = int(sys.argv[1])
    for hold in (False, True):
        launches, processes = trials(count, hold)
        print(f"{'held' if hold else 'not held'}: {launches} of {count} interrupted launches left "
              f"{processes} process(es) running")
