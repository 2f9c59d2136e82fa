"""Live progress of launches, so that a slow run can be told from a hung one.

The launcher reports rank 0's finished steps while it supervises; this module turns them into a line:
world size, launch k of n, step s of steps, seconds so far and an estimate of what is left. On a
terminal the line updates in place (at most every half second); elsewhere (CI logs, pipes) one line is
written per launch, so a log stays readable. A writer gets whole lines, or updates that start with "\r".
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

StepCallback = Callable[[int], None]     # called with the number of steps rank 0 has finished
REFRESH_S = 0.5


def _to_stderr(text: str) -> None:
    """A line, or (starting with a carriage return) an update of the current line."""
    sys.stderr.write(text if text.startswith("\r") else text + "\n")
    sys.stderr.flush()


class Progress:
    """Progress of ``total_launches`` launches of ``steps`` steps each."""

    def __init__(self, steps: int, total_launches: int, write: Callable[[str], None] | None = None,
                 live: bool | None = None):
        self.steps = steps
        self.total_launches = total_launches
        self._write = write or _to_stderr
        self.live = sys.stderr.isatty() if live is None else live
        self.done = 0
        self._durations: list[float] = []
        self._last_draw = 0.0

    def estimate_left(self, elapsed: float, steps_done: int, finished: bool) -> float | None:
        """Seconds left in this launch (unless finished) and the launches after it, from what was measured."""
        per_launch = sum(self._durations) / len(self._durations) if self._durations else None
        if per_launch is None and steps_done:
            per_launch = elapsed / steps_done * self.steps
        if per_launch is None:
            return None
        later = max(self.total_launches - self.done - (0 if finished else 1), 0)
        return (0.0 if finished else max(per_launch - elapsed, 0.0)) + per_launch * later

    def line(self, world_size: int, index: int, rounds: int, steps_done: int, elapsed: float,
             warmup: bool = False, finished: bool = False, side: str = "") -> str:
        left = self.estimate_left(elapsed, steps_done, finished)
        eta = f", about {left:.0f} s left" if left is not None else ""
        which = side + ("warm-up launch" if warmup else f"launch {index + 1} of {rounds}")
        number = self.done if finished else self.done + 1
        return (f"world size {world_size}: {which}, step {steps_done} of {self.steps}, "
                f"{elapsed:.1f} s{eta} (launch {number} of {self.total_launches})")

    @contextmanager
    def launch(self, world_size: int, index: int, rounds: int = 1, warmup: bool = False,
               side: str = "") -> Iterator[StepCallback]:
        """Report one launch; yields the callback the launcher calls with rank 0's finished steps.
        ``side`` prefixes the launch's name ("REF " for the reference code of an A/B session)."""
        started = time.perf_counter()
        state = {"steps": 0}

        def on_step(steps_done: int) -> None:
            state["steps"] = steps_done
            if not self.live:
                return
            now = time.perf_counter()
            if now - self._last_draw >= REFRESH_S:
                self._last_draw = now
                self._write("\r" + self.line(world_size, index, rounds, steps_done, now - started, warmup,
                                              side=side) + "\x1b[K")

        try:
            yield on_step
        finally:
            elapsed = time.perf_counter() - started
            self._durations.append(elapsed)
            self.done += 1
            text = self.line(world_size, index, rounds, state["steps"], elapsed, warmup, finished=True, side=side)
            self._write("\r" + text + "\x1b[K\n" if self.live else text)

    def note(self, text: str) -> None:
        self._write(text)
