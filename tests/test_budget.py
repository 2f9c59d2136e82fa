"""The extra-launch budget is a cap: an extension is projected from the launches so far before it starts."""
import pytest
from test_breakdown import make_doc

from benchmarks.fixtures import projected_seconds


def launch_with_wall(wall):
    doc = make_doc([[{"step_time": 0.5}]] * 3)
    doc.launch["wall_time"] = wall
    return doc


def test_more_launches_are_projected_from_the_mean_wall_time_of_those_so_far():
    launches = [launch_with_wall(4.0), launch_with_wall(6.0), launch_with_wall(None)]   # a failed one has none
    assert projected_seconds(launches, 8) == pytest.approx(40.0)
    assert projected_seconds([], 8) == 0.0
