"""The suite's fixtures: the settings, the measurement session and the lever study the plugin opened, and the
translation of a session's launches into benchmark rounds and of a failed launch into a failed test. Loaded by
the plugin (``lanemodel.suite.plugin``'s ``pytest_plugins``)."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from lanemodel.analysis.outcome import SuiteOutcome
from lanemodel.records import Launch
from lanemodel.session.errors import LaunchFailed, NotRun
from lanemodel.session.levers import LeverStudy
from lanemodel.session.session import ScalingSession
from lanemodel.settings import SweepSettings
from lanemodel.suite.shell import shell_of


@pytest.fixture(scope="session")
def suite_options(request: pytest.FixtureRequest) -> SweepSettings:
    return shell_of(request.config).settings


@pytest.fixture(scope="session")
def scaling_session(request: pytest.FixtureRequest) -> ScalingSession:
    """The session the plugin opened for this run's scaling items."""
    return shell_of(request.config).session


@pytest.fixture(scope="session")
def lever_study(request: pytest.FixtureRequest, suite_options: SweepSettings) -> LeverStudy:
    """The session's lever study (its values checked at collection), warmed up by one short launch."""
    from lanemodel.session.opening import open_lever_study

    shell = shell_of(request.config)
    write, live = shell.write_progress()
    shell.levers = open_lever_study(suite_options, shell.lever_values, write, live)
    shell.adopt(shell.levers)
    if suite_options.plan.warmup_launches:
        shell.levers.warm_up(max(suite_options.launch.world_sizes))
    return shell.levers


@pytest.fixture
def scaling_outcome(request: pytest.FixtureRequest) -> SuiteOutcome | None:
    """What the session concluded (curve, report, gate), once every benchmark and probe has run: the gate
    items' input; None when no launch finished."""
    session = shell_of(request.config).session
    return session.conclude() if session is not None else None


def benchmark_rounds(benchmark) -> Callable[[Callable[[], Launch]], Launch]:
    """Each measured launch as one round of ``benchmark``: the first through ``benchmark.pedantic`` (which
    makes its statistics), every later one added to them."""
    def timed(run: Callable[[], Launch]) -> Launch:
        if benchmark.stats is None:
            return benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
        started = time.perf_counter()
        launch = run()
        benchmark.stats.update(time.perf_counter() - started)
        return launch
    return timed


@contextmanager
def failed_launch_fails_test() -> Iterator[None]:
    """A failed launch fails its test with the launch's error (what it measured is kept and reported); a world
    size the session did not launch (it would not fit in memory) is skipped with the numbers."""
    try:
        yield
    except LaunchFailed as exc:
        pytest.fail(str(exc), pytrace=False)
    except NotRun as exc:
        pytest.skip(str(exc))
