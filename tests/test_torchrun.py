"""The rank entry point runs unchanged under torchrun: two agents, --nnodes=2, c10d rendezvous on loopback."""
import os
import signal
import subprocess
import sys

import pytest

from lanemodel.engine.collector import collect
from lanemodel.engine.launcher import free_port
from lanemodel.training.config import TrainConfig
from lanemodel.training.data import build_frame_cache
from lanemodel.training.model import get_preset

pytestmark = pytest.mark.engine


def test_two_torchrun_agents_form_one_world(synth_data, tmp_path):
    cfg = TrainConfig(data_dir=str(synth_data), steps=3, global_batch=4)
    build_frame_cache(synth_data, get_preset(cfg.preset))
    config = tmp_path / "config.json"
    config.write_text(cfg.to_json())
    records = tmp_path / "records"
    port = free_port()
    agents = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
         "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=lanebench-test",
         "--max-restarts=0", "-m", "lanemodel", "rank", "--config", str(config), "--records-dir", str(records)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True) for _ in range(2)]
    try:
        outputs = [agent.communicate(timeout=180)[0] for agent in agents]
    finally:
        for agent in agents:
            if agent.poll() is None:
                os.killpg(agent.pid, signal.SIGKILL)
                agent.wait()
    assert [a.returncode for a in agents] == [0, 0], outputs
    result = collect(records, world_size=2)
    assert result.complete_steps == [0, 1, 2]
    assert {r["world_size"] for r in result.records} == {2}
    assert {r["batch_size"] for r in result.records} == {2}
    assert {m["rank"] for m in result.metas} == {0, 1}
    assert all(r["comm_time"] > 0 for r in result.records)


def test_the_launcher_runs_a_launch_as_a_torchrun_job_with_per_rank_thread_plans(synth_data, tmp_path):
    from lanemodel.engine.sweep import measure_world_size

    cfg = TrainConfig(data_dir=str(synth_data), steps=3, global_batch=4)
    launch = measure_world_size(cfg, 2, "tuned", tmp_path / "run", timeout_s=180, launcher="torchrun")
    assert launch.finished and launch.launch["launcher"] == "torchrun"
    assert sorted(launch.run_step_times) == [0, 1, 2]
    affinities = sorted(tuple(meta["threads"]["affinity"]) for meta in launch.rank_metas)
    planned = sorted(tuple(plan["cpus"]) for plan in launch.env["thread_plans"])
    assert affinities == planned                       # each rank applied its own plan, picked by LOCAL_RANK
    assert all(meta["threads"]["intra_op_threads"] == launch.env["thread_plans"][0]["intra_op"]
               for meta in launch.rank_metas)


@pytest.mark.parametrize("fault, expected", [("raise:1:1", "rank 1 raised RuntimeError"),
                                             ("hang:1:1", "timed out after 20 s")])
def test_a_failing_torchrun_job_is_named_and_leaves_nothing_running(synth_data, tmp_path, fault, expected):
    from lanemodel.engine.sweep import SweepError, measure_world_size
    from lanemodel.engine.torchrunner import descendants

    cfg = TrainConfig(data_dir=str(synth_data), steps=3, global_batch=4)
    before = set(descendants(os.getpid()))
    with pytest.raises(SweepError, match=expected) as info:
        measure_world_size(cfg, 2, "tuned", tmp_path / "run", timeout_s=20, fault=fault, launcher="torchrun")
    assert info.value.partial.records                 # the step every rank finished is kept
    assert set(descendants(os.getpid())) <= before    # the agent and both workers are gone
