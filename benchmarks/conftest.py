"""Fixtures of this repository's own groups (the performance targets): the lane detector's data set and the
runner of the performance group's launches."""
from __future__ import annotations

from pathlib import Path

import pytest

from lanemodel.settings import SweepSettings


@pytest.fixture(scope="session")
def lane_data(suite_options: SweepSettings) -> Path:
    """The data set the performance group trains on (the synthetic one made once and reused, or --data), the
    previous run's results cleared."""
    from lanemodel.session.runs import data_dir, prepare_results_dir, synthesize_data

    prepare_results_dir(suite_options)
    synthesize_data(suite_options)
    return data_dir(suite_options)


@pytest.fixture(scope="session")
def perf_runner(suite_options: SweepSettings, lane_data: Path):
    from benchmarks.performance import PerformanceRunner

    return PerformanceRunner(suite_options, lane_data)
