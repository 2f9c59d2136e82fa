"""Rank processes forked from a server that has already imported torch and torchvision.

A fresh interpreter spends about 2-3 s importing torch and torchvision before a rank can rendezvous,
and on 2 cores four ranks importing at once take twice that. A fork server imports them once per
session; a rank forked from it starts in a fraction of a second. The child still gets its own
session, environment, thread budget and affinity: ``lanemodel.rank`` (which applies the budget on
import) is imported in the child, never in the server.
"""
from __future__ import annotations

import functools
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

PRELOAD = ["torch", "torchvision", "torch.distributed", "lanemodel.train"]


@functools.cache
def _context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _run_rank(argv: list[str], env: dict[str, str], log_file: str) -> None:
    os.setsid()  # its own process group, so the launcher can kill it with everything it started
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ.clear()
    os.environ.update(env)
    from lanemodel.rank import main

    sys.exit(main(argv))


class ForkedRank:
    """The subset of subprocess.Popen the launcher uses, for a rank forked from the server."""

    def __init__(self, argv: list[str], env: dict[str, str], log_file: Path):
        self._process = _context().Process(target=_run_rank, args=(argv, env, str(log_file)))
        self._process.start()
        self.pid = self._process.pid

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(f"rank pid {self.pid}", timeout or 0)
        return self._process.exitcode
