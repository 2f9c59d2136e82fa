"""The extra-launch budget is a cap: an extension is projected from the launches so far before it starts."""
import pytest
from test_breakdown import make_doc

from lanemodel.session.session import projected_seconds


def launch_with_wall(wall):
    doc = make_doc([[{"step_time": 0.5}]] * 3)
    doc.launch["wall_time"] = wall
    return doc


def test_more_launches_are_projected_from_the_mean_wall_time_of_those_so_far():
    launches = [launch_with_wall(4.0), launch_with_wall(6.0), launch_with_wall(None)]   # a failed one has none
    assert projected_seconds(launches, 8) == pytest.approx(40.0)
    assert projected_seconds([], 8) == 0.0


def launch_with_imports(per_rank: list[tuple[float, float]]):
    """(imports wall, imports CPU) per rank."""
    doc = make_doc([[{"step_time": 0.5}]] * 3)
    doc.rank_metas = [{"entry_time": 100.0, "imports_done_time": 100.0 + wall, "imports_cpu_time": cpu}
                      for wall, cpu in per_rank]
    return doc


def test_a_cold_start_is_the_imports_wait_beyond_their_cpu_and_their_share_of_the_cores():
    from lanemodel.session.planning import cold_start_seconds

    assert cold_start_seconds(launch_with_imports([(16.0, 3.5)]), cores=2) == pytest.approx(12.5)
    # four ranks on two cores take twice their CPU time when warm: that is the launch's cost, not a cold start
    assert cold_start_seconds(launch_with_imports([(7.0, 3.5)] * 4), cores=2) == 0.0
    assert cold_start_seconds(launch_with_imports([(9.0, 3.5)] * 4), cores=2) == pytest.approx(2.0)
    assert cold_start_seconds(make_doc([[{"step_time": 0.5}]] * 3), cores=2) == 0.0   # metas without the field
