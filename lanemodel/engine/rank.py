"""The rank process: reads the torchrun environment, applies its thread budget, trains, records.

The embedded launcher starts this module with the same variables torchrun sets (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT), so ``torchrun ... -m lanemodel rank`` runs it unchanged.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import time
import traceback
from datetime import timedelta
from pathlib import Path

ENTRY_TIME = time.time()

from lanemodel.engine.cgroup import raise_oom_score  # noqa: E402
from lanemodel.engine.slurmenv import adopt_slurm_env  # noqa: E402
from lanemodel.engine.threads import apply_plan_from_env  # noqa: E402  (the budget must apply before torch starts work)

raise_oom_score()                      # under memory pressure the kernel takes a rank, not the session
SLURM_TASK = adopt_slurm_env()         # an srun task: SLURM_PROCID etc. as RANK etc., before the plan is picked
THREAD_SETTINGS = apply_plan_from_env()

import torch.distributed as dist  # noqa: E402

from lanemodel.engine.recorder import ENV_LAUNCH_TIME, StepRecorder, error_path, write_rank_meta  # noqa: E402
from lanemodel.training.config import TrainConfig  # noqa: E402
from lanemodel.training.cpucounters import max_rss_mb, shared_rss_mb  # noqa: E402
from lanemodel.training.model import gradient_bytes, parameter_count, parameter_digest  # noqa: E402
from lanemodel.training.train import RankContext, train  # noqa: E402

IMPORTS_DONE_TIME = time.time()
IMPORTS_DONE_CPU = time.process_time()    # CPU seconds so far: imports that waited for the disk took longer
FAULT_KINDS = ("raise", "hang", "sigkill", "sigterm", "exit", "hog")
HOG_CHUNK = 64 * 2**20       # "hog": memory taken (and touched) 64 MiB at a time until the kernel kills the rank
HOG_MOST = 64 * 2**30        # and never more than this, so that a machine without a memory limit survives the test


def parse_fault(text: str) -> tuple[str, int, int] | None:
    """'KIND:RANK:STEP' makes RANK misbehave before STEP: the engine's fault handling is tested with it."""
    if not text:
        return None
    parts = text.split(":")
    if len(parts) != 3 or parts[0] not in FAULT_KINDS:
        raise ValueError(f"fault must be KIND:RANK:STEP with KIND in {FAULT_KINDS}, got {text!r}")
    return parts[0], int(parts[1]), int(parts[2])


def fault_callback(fault: tuple[str, int, int] | None, rank: int):
    def before_step(step: int) -> None:
        if fault is None or fault[1] != rank or fault[2] != step:
            return
        kind = fault[0]
        if kind == "raise":
            raise RuntimeError(f"injected fault on rank {rank} at step {step}")
        if kind == "exit":              # leaves without an error file, as a crash in native code would
            print(f"rank {rank} exits with code 3 at step {step}", flush=True)
            os._exit(3)
        if kind == "hang":
            while True:
                time.sleep(1)
        if kind == "hog":               # past the memory cgroup's limit: the out-of-memory killer takes this rank
            taken = []
            while len(taken) * HOG_CHUNK < HOG_MOST:
                taken.append(bytearray(b"x" * HOG_CHUNK))
            raise MemoryError(f"injected memory hog on rank {rank} reached {HOG_MOST / 2**30:g} GiB unkilled")
        os.kill(os.getpid(), signal.SIGKILL if kind == "sigkill" else signal.SIGTERM)
    return before_step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lanemodel rank")
    parser.add_argument("--config", required=True, help="TrainConfig JSON file")
    parser.add_argument("--records-dir", required=True, help="where this rank writes rank<R>.jsonl")
    parser.add_argument("--fault", default="", help="KIND:RANK:STEP, for testing fault handling")
    args = parser.parse_args(argv)
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    records_dir = Path(args.records_dir)
    try:
        cfg = TrainConfig.from_json(Path(args.config).read_text())
        dist.init_process_group("gloo", rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=cfg.collective_timeout_s))
        write_rank_meta(records_dir, rank, {
            "rank": rank, "world_size": world_size, "local_rank": int(os.environ.get("LOCAL_RANK", rank)),
            "pid": os.getpid(), "host": socket.gethostname(), "slurm_task": SLURM_TASK, "entry_time": ENTRY_TIME,
            "imports_done_time": IMPORTS_DONE_TIME, "imports_cpu_time": IMPORTS_DONE_CPU,
            "init_done_time": time.time(),
            "launch_time": float(os.environ.get(ENV_LAUNCH_TIME, "nan")), "threads": THREAD_SETTINGS,
        })
        with StepRecorder(records_dir, rank) as recorder:
            result = train(cfg, RankContext(rank, world_size, distributed=True), recorder,
                           before_step=fault_callback(parse_fault(args.fault), rank))
        model = result.model
        write_rank_meta(records_dir, rank, {**json.loads((records_dir / f"rank{rank}.meta.json").read_text()),
                                            "parameters": parameter_count(model),
                                            "gradient_bytes": gradient_bytes(model),
                                            "parameter_sha256": parameter_digest(model), "end_time": time.time(),
                                            "max_rss_mb": max_rss_mb(), "shared_rss_mb": shared_rss_mb()})
        dist.barrier()
        dist.destroy_process_group()
    except BaseException as exc:
        records_dir.mkdir(parents=True, exist_ok=True)
        error_path(records_dir, rank).write_text(json.dumps(
            {"rank": rank, "time": time.time(), "error": repr(exc), "traceback": traceback.format_exc()}))
        raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
