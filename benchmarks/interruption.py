"""An interrupted session ends as cleanly as a finished one (loaded beside ``benchmarks.plugin``).

Ctrl-C, or SIGTERM (a CI job's timeout, `kill`), which the whole session takes as Ctrl-C so that every launch,
probe and checkout unwinds through its own clean-up: pytest exits with its own "interrupted" status and no
traceback, the metrics files already written stay, REPORT.md is written from the finished launches and
marked partial, and pytest-benchmark is handed no benchmark without a measured round (its summary table
cannot take one). A launch that failed or timed out fails its test; the report names it too.
"""
from __future__ import annotations

import pytest

from benchmarks.state import SuiteState
from benchmarks.suite import launch_summary
from lanemodel.engine.interrupts import terminate_as_interrupt


class Interruption:
    """The session's plugin for interruptions, registered by ``benchmarks.plugin`` when the suite runs."""

    def __init__(self, state: SuiteState):
        self.state = state
        state.cleanup.enter_context(terminate_as_interrupt())

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo) -> None:
        """Remember what the interruption stopped, for the report and the terminal."""
        cause = str(excinfo.value) or "Ctrl-C"
        self.state.interrupted = f"interrupted ({cause})" + (f" during {self.state.now}" if self.state.now else "")

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int):
        """Before pytest-benchmark saves and tabulates: drop benchmarks that measured no round, and give one
        interrupted after some rounds the summary of its finished launches."""
        bench_session = getattr(session.config, "_benchmarksession", None)
        if bench_session is not None:
            bench_session.benchmarks[:] = [bench for bench in bench_session.benchmarks if self._complete(bench)]
        yield

    def _complete(self, bench) -> bool:
        if not bench:
            return False
        if bench.extra_info or "world_size" not in bench.params:
            return True
        key = (bench.params["thread_policy"], bench.params["world_size"])
        finished = [launch for launch in self.state.series.get(key, []) if launch.finished]
        if finished:
            bench.extra_info.update({**launch_summary(finished), "partial": True})
        return bool(finished)
