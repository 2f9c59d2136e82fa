"""What one pytest session of the suite holds, in the config's stash: its settings, the measurement session
(``lanemodel.session``), the lever study, and where the summaries go. The plugin's hooks and fixtures
translate between it and pytest; every decision about launches is the session's."""
from __future__ import annotations

import atexit
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path

import pytest

from lanemodel.engine.interrupts import terminate_as_interrupt
from lanemodel.session.errors import SessionError
from lanemodel.session.levers import LeverStudy
from lanemodel.session.session import ScalingSession
from lanemodel.settings import SweepSettings


class SuiteShell:
    """The suite's part of one pytest session; ``settings`` is None when the session does not run the suite."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.settings: SweepSettings | None = None
        self.session: ScalingSession | None = None     # made at collection when the scaling group runs
        self.lever_values: tuple = ()                   # --levers: the values, parsed and checked at collection
        self.levers: LeverStudy | None = None           # --levers: the study, made by its first item
        self.summaries: list[tuple[Path, bool]] = []    # where the reviewer's summary goes (path, append)
        self.ref_saved = False
        # What the session made (REF's worktree, emulated nodes, the SIGTERM handler) goes when pytest
        # unconfigures; at interpreter exit too, for a session that died on its way out (e.g. writing to a
        # closed pipe after its parent was killed, which left a worktree once).
        self.cleanup = ExitStack()
        atexit.register(self.cleanup.close)

    def start(self, settings: SweepSettings) -> None:
        """The suite runs in this session: SIGTERM (a CI job's timeout, ``kill``) is taken as Ctrl-C from now on,
        so that every launch, probe and checkout unwinds through its own clean-up."""
        self.settings = settings
        self.cleanup.enter_context(terminate_as_interrupt())

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo) -> None:
        """Remember what the interruption (Ctrl-C, or SIGTERM taken as one) stopped, for the report."""
        if self.session is not None:
            self.session.interrupt(str(excinfo.value) or "Ctrl-C")

    def adopt(self, owner: ScalingSession | LeverStudy) -> None:
        """``owner`` closes (its worktree, its nodes) when the pytest session ends."""
        self.cleanup.callback(owner.close)

    def write_progress(self):
        """(write, live): progress lines through pytest's terminal writer, output capture suspended for each (so
        that they reach a CI log while a test runs): one updating line on a terminal, one line per launch in
        a log; nothing with -qq."""
        config = self.config
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if reporter is None or config.get_verbosity() < -1:
            return (lambda text: None), False

        def write(text: str) -> None:
            with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
                if text.startswith("\r"):
                    reporter.write(text, flush=True)
                else:
                    reporter.ensure_newline()
                    reporter.write(text + "\n", flush=True)

        return write, reporter.isatty


@contextmanager
def usage_errors() -> Iterator[None]:
    """The session's refusals as pytest's usage error (exit 4), in the session's words."""
    try:
        yield
    except SessionError as exc:
        raise pytest.UsageError(str(exc)) from None


SHELL_KEY = pytest.StashKey[SuiteShell]()


def shell_of(config: pytest.Config) -> SuiteShell:
    return config.stash[SHELL_KEY]
