"""The DDP engine against real gloo ranks: gradient averaging, faults, timeouts, no leftover processes."""
import os
import socket
import time

import pytest

from lanemodel.engine import launcher
from lanemodel.engine.sweep import SweepError, measure_world_size
from lanemodel.training.config import TrainConfig

pytestmark = pytest.mark.engine


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited; its parent just has not reaped it yet
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture
def cfg(synth_data):
    return TrainConfig(data_dir=str(synth_data), steps=4, global_batch=4, lr=1e-3)


def run_losses(doc) -> dict[int, float]:
    """Per step, the global batch's loss: the mean of the ranks' losses (equal rank batches)."""
    by_step: dict[int, list[float]] = {}
    for r in doc.records:
        by_step.setdefault(r.step, []).append(r.loss)
    return {s: sum(v) / len(v) for s, v in by_step.items()}


def test_one_and_two_ranks_at_the_same_global_batch_train_alike(cfg, tmp_path):
    one = measure_world_size(cfg, 1, "tuned", tmp_path / "ws1", timeout_s=120)
    two = measure_world_size(cfg, 2, "tuned", tmp_path / "ws2", timeout_s=120)
    l1, l2 = run_losses(one), run_losses(two)
    assert sorted(l1) == sorted(l2) == [0, 1, 2, 3]
    # Same samples, same initial weights: only per-rank BatchNorm statistics differ at step 0.
    assert l2[0] == pytest.approx(l1[0], rel=0.01)
    for step in (1, 2, 3):
        assert l2[step] == pytest.approx(l1[step], rel=0.03)
    assert {r.batch_size for r in two.records} == {2}
    assert all(r.comm_time > 0 and r.comm_buckets >= 1 for r in two.records)
    assert len(two.run_step_times) == 4
    for step, t in two.run_step_times.items():
        assert t == max(r.step_time for r in two.records if r.step == step)
    assert not two.oversubscribed
    assert two.launch_to_first_step > 0
    # After 4 DDP steps both ranks hold bit-identical parameters: gradients were synchronised every step.
    digests = {meta["parameter_sha256"] for meta in two.rank_metas}
    assert len(digests) == 1 and len(digests.pop()) == 64


def test_with_sgd_one_and_two_ranks_at_the_same_global_batch_take_the_same_step(synth_data, tmp_path):
    """SGD's step scales with the gradient. After one step at lr 0.2 the loss of 1 and 2 ranks (same samples,
    same weights; only BatchNorm sees 4 vs 2 frames per rank) agreed to 0.2 % here, while a hook that sums
    instead of averaging takes a twice longer step: that loss came out 6 % higher (equal to 2 ranks at lr 0.4)."""
    sgd = TrainConfig(data_dir=str(synth_data), steps=3, global_batch=4, lr=0.2, optimizer="sgd",
                      warmup_iters=1, weight_decay=0.0)
    one = run_losses(measure_world_size(sgd, 1, "tuned", tmp_path / "ws1", timeout_s=120))
    two = run_losses(measure_world_size(sgd, 2, "tuned", tmp_path / "ws2", timeout_s=120))
    assert two[0] == pytest.approx(one[0], rel=0.002)
    assert two[1] == pytest.approx(one[1], rel=0.02), (one, two)


def assert_run_failed_cleanly(exc: SweepError, kept_steps: list[int]) -> None:
    partial = exc.partial
    assert partial.error
    for rank in range(partial.world_size):
        pid = partial.launch["pids"][rank]
        assert not alive(pid), f"rank {rank} (pid {pid}) outlived the run"
    assert sorted({r.step for r in partial.records}) == kept_steps


@pytest.mark.parametrize("fault, message, kept, bound_s, spawn", [
    ("raise:1:2", r"rank 1 raised RuntimeError\('injected fault on rank 1 at step 2'\)", [0, 1], 60, "fresh"),
    ("sigkill:1:1", "rank 1 was killed by signal SIGKILL", [0], 60, "fresh"),
    ("sigterm:0:1", "rank 0 was killed by signal SIGTERM", [0], 60, "fresh"),
    ("raise:0:1", r"rank 0 raised RuntimeError\('injected fault on rank 0 at step 1'\)", [0], 60, "forkserver"),
    ("sigkill:1:1", "rank 1 was killed by signal SIGKILL", [0], 60, "forkserver"),
])
def test_a_failing_rank_ends_the_run_promptly_and_keeps_records(cfg, tmp_path, fault, message, kept, bound_s,
                                                                 spawn):
    started = time.monotonic()
    with pytest.raises(SweepError, match=message) as info:
        measure_world_size(cfg, 2, "tuned", tmp_path, timeout_s=bound_s, fault=fault, spawn=spawn)
    assert time.monotonic() - started < 15      # detected at once, not at the 60 s timeout
    assert "records kept in" in str(info.value)
    assert_run_failed_cleanly(info.value, kept)


def test_traceback_of_the_failing_rank_is_in_the_error(cfg, tmp_path):
    with pytest.raises(SweepError) as info:
        measure_world_size(cfg, 2, "tuned", tmp_path, timeout_s=60, fault="raise:0:1")
    assert "Traceback (most recent call last)" in str(info.value)
    assert "in before_step" in str(info.value)


@pytest.mark.parametrize("spawn", ["fresh", "forkserver"])
def test_hung_collective_is_ended_by_the_run_timeout(cfg, tmp_path, spawn):
    started = time.monotonic()
    with pytest.raises(SweepError, match=r"timed out after 12 s; ranks still running: \[0, 1\]") as info:
        measure_world_size(cfg, 2, "tuned", tmp_path, timeout_s=12, fault="hang:1:1", spawn=spawn)
    assert time.monotonic() - started < 12 + 15
    assert_run_failed_cleanly(info.value, [0])


@pytest.fixture
def taken_port():
    """A loopback port some other socket is listening on."""
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        yield blocker.getsockname()[1]


def test_taken_rendezvous_port_is_retried(cfg, tmp_path, monkeypatch, taken_port):
    taken = taken_port
    ports = iter([taken])
    real_free_port = launcher.free_port
    monkeypatch.setattr(launcher, "free_port", lambda: next(ports, None) or real_free_port())
    doc = measure_world_size(cfg.__class__(**{**cfg.__dict__, "steps": 1}), 2, "tuned", tmp_path, timeout_s=60)
    assert doc.launch["attempts"] == 2 and doc.launch["port"] != taken


def test_forked_ranks_train_exactly_like_fresh_ones_with_their_own_budget(cfg, tmp_path):
    fresh = measure_world_size(cfg, 2, "tuned", tmp_path / "fresh", timeout_s=120)
    forked = measure_world_size(cfg, 2, "tuned", tmp_path / "forked", timeout_s=120, spawn="forkserver")
    assert forked.launch["spawn"] == "forkserver" and fresh.launch["spawn"] == "fresh"
    assert [r.loss for r in forked.records] == pytest.approx([r.loss for r in fresh.records], rel=1e-5)
    for meta, plan in zip(forked.rank_metas, forked.env["thread_plans"]):
        assert meta["threads"]["affinity"] == list(plan["cpus"])
        assert meta["threads"]["intra_op_threads"] == plan["intra_op"]
        assert meta["threads"]["OMP_NUM_THREADS"] == str(plan["intra_op"])


def test_a_rank_that_exits_without_an_error_file_is_reported_with_its_log_tail(cfg, tmp_path):
    with pytest.raises(SweepError, match="rank 1 exited with code 3; log tail:") as info:
        measure_world_size(cfg, 2, "tuned", tmp_path, timeout_s=60, fault="exit:1:1")
    assert "rank 1 exits with code 3 at step 1" in str(info.value)
    assert_run_failed_cleanly(info.value, [0])


def test_port_retries_give_up_after_the_last_attempt(cfg, tmp_path, monkeypatch, taken_port):
    calls = []
    monkeypatch.setattr(launcher, "free_port", lambda: calls.append(taken_port) or taken_port)
    with pytest.raises(SweepError, match="world size 2 failed") as info:
        measure_world_size(cfg, 2, "tuned", tmp_path, timeout_s=60)
    assert len(calls) == launcher.PORT_ATTEMPTS
    assert any(marker in str(info.value) for marker in launcher.PORT_IN_USE_MARKERS)
