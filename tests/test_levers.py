"""The training levers: communication hooks (fp16, bf16, PowerSGD) and gradient accumulation. Bad values are
refused naming them; across two real gloo ranks every hook averages and sends the bytes it should (counted
from the tensors it sent); accumulating micro-batches takes the same step as one batch."""
import subprocess
import sys

import pytest
from suite_helpers import run_ranks

from lanemodel.training.config import TrainConfig, parse_comm_hook


@pytest.mark.parametrize("text, expected", [("none", ("none", 0)), ("bf16", ("bf16", 0)),
                                            ("powersgd:4", ("powersgd", 4))])
def test_comm_hooks_parse(text, expected):
    assert parse_comm_hook(text) == expected


@pytest.mark.parametrize("settings, message", [
    ({"comm_hook": "int8"}, "comm_hook 'int8': unknown"),
    ({"comm_hook": "powersgd:0"}, "PowerSGD needs a whole rank >= 1"),
    ({"comm_hook": "powersgd"}, "PowerSGD needs a whole rank >= 1"),
    ({"comm_hook": "fp16:2"}, "only powersgd takes a rank"),
    ({"powersgd_start_iter": 1}, "powersgd_start_iter must be at least 2"),
    ({"accumulate": 0}, "accumulate must be at least 1"),
])
def test_bad_levers_are_refused_naming_them(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(data_dir="d", **settings)


def test_accumulation_must_split_the_rank_batch():
    cfg = TrainConfig(data_dir="d", global_batch=8, accumulate=4)
    assert cfg.micro_batch_size(2) == 1
    with pytest.raises(ValueError, match="accumulate 4 does not divide the per-rank batch 2 at world size 4"):
        cfg.micro_batch_size(4)


WORKER = """
import json, os, sys
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from lanemodel.training.commhook import CommTimer, register_hook
from lanemodel.training.config import parse_comm_hook

rank, store, out, hook = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
torch.manual_seed(0)
model = torch.nn.Linear(64, 64, bias=False)       # one 64 x 64 matrix: 4096 numbers, 16 KiB in fp32
ddp = DistributedDataParallel(model)
timer = CommTimer(world_size=2)
kind, matrix_rank = parse_comm_hook(hook)
register_hook(ddp, timer, kind, matrix_rank, start_iter=2, warm_start=True)
sent, grads = [], []
for step in range(3):                              # PowerSGD compresses from its third step (start_iter 2)
    ddp.zero_grad()
    output = ddp(torch.ones(1, 64))
    # d(loss)/d(weight) = rank + 1 everywhere: 1 on rank 0, 2 on rank 1; their mean is 1.5.
    loss = 0.0 * output.sum() + (rank + 1) * model.weight.sum()
    loss.backward()
    sent.append(sum(span[2] for span in timer.spans))
    timer.take()
    grads.append(model.weight.grad.flatten().tolist())
with open(out, "w") as f:
    json.dump({"sent": sent, "grads": grads}, f)
dist.barrier()
dist.destroy_process_group()
os._exit(0)
"""


def two_ranks(tmp_path, hook: str) -> list[dict]:
    return run_ranks(WORKER, tmp_path / f"store-{hook.replace(':', '')}",
                         [tmp_path / f"{hook}{rank}" for rank in (0, 1)], hook)


@pytest.mark.engine
def test_every_hook_averages_and_powersgd_sends_the_fewest_bytes(tmp_path):
    found = {hook: two_ranks(tmp_path, hook) for hook in ("none", "fp16", "bf16", "powersgd:1")}
    for hook in ("none", "fp16", "bf16"):                       # 1.5 is exact in all three: the mean, not the sum
        assert all(g == [1.5] * 4096 for rank in found[hook] for g in rank["grads"]), hook
    # PowerSGD: plain averaging for two steps, then a rank-1 approximation of the all-1.5 gradient, which
    # is itself rank 1, so the approximation is exact up to rounding
    powersgd = found["powersgd:1"][0]["grads"]
    assert powersgd[0] == [1.5] * 4096 and max(abs(g - 1.5) for g in powersgd[2]) < 1e-3
    sent = {hook: found[hook][0]["sent"][-1] for hook in found}
    assert sent["none"] == 4096 * 4 and sent["fp16"] == sent["bf16"] == 4096 * 2
    assert sent["powersgd:1"] == (64 + 64) * 4          # P (64 x 1) and Q (64 x 1) in fp32, counted as sent
    assert found["powersgd:1"][0]["sent"][0] == 4096 * 4     # before its start step: the plain all-reduce


POWERSGD_BUCKETS_WORKER = """
import datetime, json, os, sys
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from lanemodel.training.commhook import CommTimer, register_hook

rank, store, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=4,
                        timeout=datetime.timedelta(seconds=30))
torch.manual_seed(0)
model = torch.nn.Sequential(*[torch.nn.Linear(256, 256) for _ in range(8)])    # 2.1 MB of gradient
ddp = DistributedDataParallel(model, bucket_cap_mb=0.3)                         # in several buckets
timer = CommTimer(world_size=4)
register_hook(ddp, timer, "powersgd", 1, start_iter=2, warm_start=True)
for step in range(12):
    ddp.zero_grad()
    ddp(torch.randn(4, 256) * (rank + 1)).square().mean().backward()
    buckets = timer.take().buckets
with open(out, "w") as f:
    json.dump({"weights": model[0].weight[0, :8].tolist(), "buckets": buckets}, f)
dist.barrier()
dist.destroy_process_group()
os._exit(0)
"""


@pytest.mark.engine
def test_powersgd_over_several_buckets_keeps_every_rank_in_step(tmp_path):
    """PowerSGD's later all-reduces are issued from gloo's callback threads: with several buckets in flight, 4
    ranks issued them in different orders and hung (5 of 5 runs before the hook waited for each bucket)."""
    found = run_ranks(POWERSGD_BUCKETS_WORKER, tmp_path / "store", [tmp_path / f"out{rank}" for rank in range(4)],
                      timeout=90)
    assert found[0]["buckets"] > 2
    assert all(rank["weights"] == found[0]["weights"] for rank in found)     # the same update on every rank


@pytest.mark.engine
def test_accumulating_micro_batches_takes_the_same_step_as_one_batch(synth_data, tmp_path):
    from lanemodel.training.train import RankContext, train

    losses = {}
    for accumulate in (1, 2, 4):
        cfg = TrainConfig(data_dir=str(synth_data), steps=2, global_batch=4, lr=0.2, optimizer="sgd",
                          warmup_iters=1, weight_decay=0.0, accumulate=accumulate)
        losses[accumulate] = [record.loss for record in train(cfg, RankContext()).records]
    # Same samples, same weights: the first loss is the same mean over 4 frames; after one SGD step on the
    # summed micro-gradients the second agrees (only BatchNorm sees 2 or 1 frames at a time instead of 4)
    assert losses[2][0] == pytest.approx(losses[1][0], rel=0.01)
    assert losses[4][0] == pytest.approx(losses[1][0], rel=0.03)
    assert losses[2][1] == pytest.approx(losses[1][1], rel=0.05), losses


def test_gloo_is_asked_whether_it_can_all_reduce_a_hook_s_dtype():
    from lanemodel.engine.hookcheck import check_comm_hook, gloo_refusal

    assert gloo_refusal("bfloat16") is None and gloo_refusal("float16") is None
    assert "Invalid scalar type" in gloo_refusal("float8_e4m3fn")        # a dtype gloo lacks
    check_comm_hook("bf16")                                               # this machine's gloo can: no refusal


def test_the_sweep_refuses_an_accumulation_a_world_size_cannot_split_before_any_launch(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lanemodel", "sweep", "--world-sizes", "1,2", "--global-batch", "4",
                           "--accumulate", "4", "--results-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "accumulate 4 does not divide the per-rank batch 2 at world size 2" in proc.stderr
    assert not list(tmp_path.rglob("metrics_*.json"))
