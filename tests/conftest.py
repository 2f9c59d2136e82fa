"""Shared fixtures: a small synthetic TuSimple data set, made once per test session (per xdist worker)."""
from __future__ import annotations

from pathlib import Path

import pytest
from shared_data import REAL_LABELS

from lanemodel.workload.synthset import write_synthetic_dataset


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    write_synthetic_dataset(root, frames=32, seed=7, test_frames=8)
    return root


@pytest.fixture(scope="session")
def real_labels() -> Path:
    return REAL_LABELS


def pytest_collection_modifyitems(config, items):
    """Tests that start rank processes share one xdist worker, so they never compete with each other."""
    for item in items:
        if item.get_closest_marker("engine"):
            item.add_marker(pytest.mark.xdist_group("engine"))
