"""torch.profiler traces of training steps: one Chrome/Perfetto file per rank, with the events they are for."""
import json

import pytest

from lanemodel.engine.sweep import measure_world_size
from lanemodel.training.config import TrainConfig
from lanemodel.training.profiling import trace_path


@pytest.mark.engine
def test_two_ranks_write_traces_with_all_reduce_and_backward_events(synth_data, tmp_path):
    cfg = TrainConfig(data_dir=str(synth_data), steps=4, global_batch=4, profile_steps=2,
                      profile_dir=str(tmp_path / "traces"))
    launch = measure_world_size(cfg, 2, "tuned", tmp_path / "run", timeout_s=180)
    assert launch.finished
    for rank in (0, 1):
        events = json.loads(trace_path(tmp_path / "traces", rank).read_text())["traceEvents"]
        names = [e.get("name", "") for e in events if e.get("ph") == "X"]
        assert any("allreduce" in n.lower().replace("_", "") for n in names), rank
        assert any("backward" in n.lower() for n in names), rank
        steps = {n for n in names if n.startswith("ProfilerStep#")}
        assert steps == {"ProfilerStep#2", "ProfilerStep#3"}, steps        # steps 0 and 1 are skipped


def test_profiling_needs_a_directory():
    with pytest.raises(ValueError, match="needs profile_dir"):
        TrainConfig(data_dir="d", profile_steps=2)
