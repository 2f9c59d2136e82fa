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
