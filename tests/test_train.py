import json
import subprocess
import sys

import pytest
import torch

from lanemodel.engine.recorder import StepRecorder, read_jsonl
from lanemodel.training.config import TrainConfig
from lanemodel.training.train import RankContext, train, warmup_cosine

pytestmark = pytest.mark.engine  # trains real models: kept off the worker that runs other CPU-heavy tests

STUDY_FIELDS = {"step", "loss", "batch_size", "lr", "step_time", "total_elapsed", "start_time", "end_time"}
BREAKDOWN = {"data_time", "forward_time", "backward_time", "optimizer_time"}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_short_training_run_loss_falls(synth_data, tmp_path):
    cfg = TrainConfig(data_dir=str(synth_data), preset="tiny", steps=30, global_batch=8, lr=1e-3)
    with StepRecorder(tmp_path, 0) as recorder:
        result = train(cfg, RankContext(), recorder)
    losses = [r.loss for r in result.records]
    assert sum(losses[-5:]) / 5 < 0.92 * sum(losses[:5]) / 5
    streamed = read_jsonl(tmp_path / "rank0.jsonl")
    assert [r["step"] for r in streamed] == list(range(30))
    assert streamed[-1]["loss"] == pytest.approx(losses[-1])


def test_records_carry_study_fields_and_consistent_times(synth_data):
    cfg = TrainConfig(data_dir=str(synth_data), steps=3, global_batch=4)
    records = train(cfg, RankContext()).records
    for r in records:
        assert r.batch_size == 4 and r.global_batch_size == 4 and r.world_size == 1
        parts = r.data_time + r.forward_time + r.backward_time + r.optimizer_time
        assert parts == pytest.approx(r.step_time, rel=1e-6)
        assert r.end_time - r.start_time == pytest.approx(r.step_time, abs=1e-3)
        assert r.comm_time is None     # no DDP, nothing to all-reduce
    assert records[-1].total_elapsed >= sum(r.step_time for r in records[1:])
    assert records[0].total_elapsed == pytest.approx(records[0].step_time)


def test_one_epoch_runs_exactly_one_pass(synth_data):
    cfg = TrainConfig(data_dir=str(synth_data), one_epoch=True, global_batch=8)
    assert len(train(cfg, RankContext()).records) == 32 // 8


def test_data_set_smaller_than_a_batch_is_refused(synth_data):
    cfg = TrainConfig(data_dir=str(synth_data), steps=1, global_batch=64)
    with pytest.raises(ValueError, match="has 32 frames, fewer than one global batch of 64"):
        train(cfg, RankContext())


def test_warmup_then_cosine_schedule():
    f = warmup_cosine(warmup_iters=4, total_steps=14)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(9) == pytest.approx(0.5)          # half way through the decay
    assert f(14) == pytest.approx(0.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"scaling": "diagonal"}, "scaling must be one of"),
    ({"global_batch": 0}, "global_batch must be at least 1, got 0"),
    ({"steps": 0}, "steps must be at least 1, got 0"),
    ({"collective_timeout_s": 0}, "collective timeout must be > 0 s"),
    ({"comm_delay_ms": -1}, "comm delay must be >= 0 ms"),
])
def test_bad_config_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(data_dir="d", **kwargs)


def test_strong_scaling_batch_must_divide_and_weak_keeps_rank_batch():
    strong = TrainConfig(data_dir="d", global_batch=6)
    assert strong.rank_batch_size(3) == 2
    with pytest.raises(ValueError, match="global batch 6 does not divide evenly across world size 4"):
        strong.rank_batch_size(4)
    weak = TrainConfig(data_dir="d", scaling="weak", rank_batch=3)
    assert weak.rank_batch_size(4) == 3 and weak.global_batch_size(4) == 12
    assert TrainConfig.from_json(weak.to_json()) == weak


def test_train_cli_writes_study_metrics_json(synth_data, tmp_path):
    out = tmp_path / "metrics.json"
    proc = subprocess.run([sys.executable, "-m", "lanemodel", "train", "--data", str(synth_data), "--steps", "2",
                           "--global-batch", "4", "--threads", "1", "--metrics-out", str(out), "--evaluate"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["config"]["preset"] == "tiny" and doc["config"]["intra_op_threads"] == 1
    assert len(doc["records"]) == 2
    assert STUDY_FIELDS | BREAKDOWN <= set(doc["records"][0])
    assert "2 steps, loss" in proc.stdout
    assert set(doc["scores"]) == {"untrained", "trained"}
    for score in doc["scores"].values():
        assert set(score) == {"Accuracy", "FP", "FN"} and 0.0 <= score["Accuracy"] <= 1.0
    assert "trained: Accuracy" in proc.stdout and "untrained: Accuracy" in proc.stdout
