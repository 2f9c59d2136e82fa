"""Rank processes forked from a server that has already imported torch and torchvision.

A fresh interpreter spends about 2-3 s importing torch and torchvision before a rank can rendezvous,
and on 2 cores four ranks importing at once take twice that. A fork server imports them once per
session; a rank forked from it starts in a fraction of a second. The child still gets its own
session, environment, thread budget and affinity: its entry module (``lanemodel.engine.rank``, which applies
the budget on import, or the all-reduce microbenchmark's rank) is imported in the child, never in the server.
"""
from __future__ import annotations

import functools
import importlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PRELOAD = ["torch", "torchvision", "torch.distributed", "lanemodel.training.train"]


@functools.cache
def _context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


RANK_ENTRY = "lanemodel.engine.rank:main"


def _run_rank(argv: list[str], env: dict[str, str], log_file: str, entry: str) -> None:
    os.setsid()  # its own process group, so the launcher can kill it with everything it started
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ.clear()
    os.environ.update(env)
    module, function = entry.split(":")
    main = getattr(importlib.import_module(module), function)
    exit_process(main(argv))


def exit_process(code: int) -> None:
    """End a finished rank at once: its records and meta are on disk and its process group is gone, and the
    interpreter's own teardown (freeing torch's modules and memory) took 10 s of a 16-rank launch on 2 cores."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


READY_TIMEOUT_S = 300.0
_ready_server: list[int | None] = [None]


def fork_server_ready() -> None:
    """Start the server and wait until it has imported torch (it forks nothing before), with a child that
    exits at once: after this a rank's fork takes milliseconds, short enough to hold interrupts for
    (``interrupts.starting``). Once per server."""
    from multiprocessing import forkserver

    pid = forkserver._forkserver._forkserver_pid
    if pid is not None and pid == _ready_server[0]:
        return
    probe = _context().Process(target=os._exit, args=(0,))
    probe.start()
    probe.join(READY_TIMEOUT_S)
    _ready_server[0] = forkserver._forkserver._forkserver_pid


class ForkedRank:
    """The subset of subprocess.Popen the launcher uses, for a rank forked from the server.

    ``entry`` is "module:function", called with ``argv`` in the child; its return value is the exit code.
    """

    def __init__(self, argv: list[str], env: dict[str, str], log_file: Path, entry: str = RANK_ENTRY):
        self._process = _context().Process(target=_run_rank, args=(argv, env, str(log_file), entry))
        self._process.start()
        self.pid = self._process.pid

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(f"rank pid {self.pid}", timeout or 0)
        return self._process.exitcode


def _stop_helper(pid: int | None, alive_fd: int | None, what: str, timeout_s: float,
                 terminate: bool = False) -> None:
    """Close the helper's "alive" pipe (its signal to exit), wait for it, kill it if it lingers.

    ``terminate``: also SIGTERM it at once. The fork server keeps nothing worth a clean exit, and one still
    importing torch (a session stopped as its first fork was asked for) would only see the pipe afterwards,
    then spend seconds tearing torch down.
    """
    if pid is None:
        return
    if alive_fd is not None:
        try:
            os.close(alive_fd)
        except OSError:
            pass
    if terminate:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.01)
    print(f"warning: multiprocessing {what} (pid {pid}) did not exit; killing it", file=sys.stderr)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def shutdown_fork_server(timeout_s: float = 5.0) -> None:
    """Stop the fork server and the resource tracker now, so no process outlives the sweep or session.

    multiprocessing only stops them when the interpreter exits, about a second after a command returns;
    a later launch starts them again. Uses the helpers' private state: there is no public stop.
    """
    from multiprocessing import forkserver, resource_tracker

    server = forkserver._forkserver
    with server._lock:
        _stop_helper(server._forkserver_pid, server._forkserver_alive_fd, "fork server", timeout_s, terminate=True)
        address = server._forkserver_address
        server._forkserver_pid = server._forkserver_alive_fd = server._forkserver_address = None
        if address and not address.startswith("\0"):
            Path(address).unlink(missing_ok=True)
    tracker = resource_tracker._resource_tracker
    with tracker._lock:
        _stop_helper(tracker._pid, tracker._fd, "resource tracker", timeout_s)
        tracker._pid = tracker._fd = None
