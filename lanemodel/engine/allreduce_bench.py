"""The all-reduce microbenchmark: gloo all-reducing the gradient's buckets, and no model, at one world size.

It is the communication part of the scaling model built from measured parts: the same number of ranks,
the same thread plans (so the same core sharing) and the same transport as training (loopback, or the
rate-limited links of emulated nodes), timing only the collective. Each rep all-reduces every bucket of
the gradient (as DDP issues them: one after the other, without waiting) and waits for all; also single
messages of a few sizes, for the latency and bandwidth of the ring. Wall time per rep is the slowest
rank's; CPU time is the ranks' mean (process_time: gloo's threads included).

``measure_allreduce`` runs one process per rank: forked from the session's fork server over loopback (the
collective is all it times, and 16 fresh interpreters importing torch at once took 25-30 s of a 37 s probe on
2 cores), ``python -m lanemodel.engine.allreduce_bench`` inside the namespaces of emulated nodes.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lanemodel.engine.forkserver import ForkedRank, exit_process, fork_server_ready
from lanemodel.engine.interrupts import starting, terminate_as_interrupt
from lanemodel.engine.launcher import free_port, kill_all
from lanemodel.engine.netns import NODE_INTERFACE, EmulatedNodes, netns_command
from lanemodel.engine.threads import ThreadPlan
from lanemodel.engine.worktree import start_in_session

MESSAGE_SIZES = (64 * 1024, 1024 * 1024, 8 * 1024 * 1024)   # bytes: the ring's latency and bandwidth
RANK_ENTRY = "lanemodel.engine.allreduce_bench:rank_main"
WARMUP_REPS = 1
POLL_INTERVAL_S = 0.05


class AllreduceBenchError(RuntimeError):
    """The microbenchmark failed or ran out of time; the message names the world size and the rank."""


def bucket_sizes(gradient_bytes: int, bucket_cap_mb: float) -> list[int]:
    """The gradient cut as DDP buckets it: full buckets of the cap, then the rest (float32 elements)."""
    if gradient_bytes <= 0 or bucket_cap_mb <= 0:
        raise ValueError(f"gradient bytes and bucket cap must be positive, got {gradient_bytes} and {bucket_cap_mb}")
    cap = int(bucket_cap_mb * 1024 * 1024) // 4 * 4
    full, rest = divmod(int(gradient_bytes) // 4 * 4, cap)
    return [cap] * full + ([rest] if rest else [])


def _time_reps(tensors: list, reps: int) -> list[tuple[float, float]]:
    import torch.distributed as dist

    samples = []
    for rep in range(WARMUP_REPS + reps):
        dist.barrier()
        wall, cpu = time.perf_counter(), time.process_time()
        for work in [dist.all_reduce(tensor, async_op=True) for tensor in tensors]:
            work.wait()
        if rep >= WARMUP_REPS:
            samples.append((time.perf_counter() - wall, time.process_time() - cpu))
    return samples


def rank_main(argv: list[str] | None = None) -> int:
    """One rank: apply the thread plan, join the gloo group, time the buckets and the messages, write JSON."""
    parser = argparse.ArgumentParser(prog="python -m lanemodel.engine.allreduce_bench")
    parser.add_argument("--buckets", required=True, help="comma-separated bucket sizes in bytes")
    parser.add_argument("--reps", type=int, required=True)
    parser.add_argument("--out", required=True, help="directory for rank<R>.json")
    args = parser.parse_args(argv)
    from lanemodel.engine.cgroup import raise_oom_score
    from lanemodel.engine.threads import apply_plan_from_env

    raise_oom_score()                  # under memory pressure the kernel takes a rank, not the session

    apply_plan_from_env()
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", timeout=timedelta(seconds=120))
    buckets = [int(size) for size in args.buckets.split(",")]
    result = {"gradient": _time_reps([torch.ones(size // 4) for size in buckets], args.reps),
              "messages": {str(size): _time_reps([torch.ones(size // 4)], args.reps) for size in MESSAGE_SIZES}}
    Path(args.out, f"rank{rank}.json").write_text(json.dumps(result))
    dist.barrier()
    dist.destroy_process_group()
    return 0


def _summary(per_rank: list[list[tuple[float, float]]]) -> dict:
    """Median over reps of the slowest rank's wall time and of the ranks' mean CPU time."""
    walls = [max(rank[rep][0] for rank in per_rank) for rep in range(len(per_rank[0]))]
    cpus = [statistics.fmean(rank[rep][1] for rank in per_rank) for rep in range(len(per_rank[0]))]
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus)}


def measure_allreduce(plans: list[ThreadPlan], buckets: list[int], out_dir: str | Path, timeout_s: float,
                      reps: int = 5, nodes: EmulatedNodes | None = None) -> dict:
    """Run the microbenchmark with one rank per plan; ``nodes`` spreads them evenly over emulated nodes.

    Returns {"world_size", "nodes", "link_gbit", "buckets", "gradient": {"wall", "cpu"},
    "messages": {bytes: {"wall", "cpu"}}, "seconds"}. Raises AllreduceBenchError (ranks killed first).
    """
    world_size = len(plans)
    if nodes is not None and world_size % nodes.nodes:
        raise ValueError(f"{world_size} ranks do not split evenly over {nodes.nodes} nodes")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("rank*"):
        old.unlink()
    per_node = world_size // (nodes.nodes if nodes else 1)
    master = nodes.address(0) if nodes else "127.0.0.1"
    port, started = free_port(), time.perf_counter()
    procs: list[subprocess.Popen] = []
    with terminate_as_interrupt():
        try:
            if nodes is None:
                fork_server_ready()
            for rank, plan in enumerate(plans):
                env = plan.env(dict(os.environ))
                env.update({"RANK": str(rank), "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(rank % per_node),
                            "MASTER_ADDR": master, "MASTER_PORT": str(port), "PYTHONUNBUFFERED": "1"})
                argv = ["--buckets", ",".join(map(str, buckets)), "--reps", str(reps), "--out", str(out)]
                log = out / f"rank{rank}.log"
                if nodes is None:
                    with starting():
                        procs.append(ForkedRank(argv, env, log, entry=RANK_ENTRY))
                    continue
                env["GLOO_SOCKET_IFNAME"] = NODE_INTERFACE
                command = netns_command(nodes, rank // per_node,
                                        [sys.executable, "-m", "lanemodel.engine.allreduce_bench", *argv])
                with starting():
                    procs.append(start_in_session(command, env, log))
            _wait(procs, started + timeout_s, out, timeout_s)
        except BaseException:
            kill_all(procs)
            raise
    ranks = [json.loads((out / f"rank{rank}.json").read_text()) for rank in range(world_size)]
    return {"world_size": world_size, "nodes": nodes.nodes if nodes else 1,
            "link_gbit": nodes.link_gbit if nodes else None, "buckets": buckets, "reps": reps,
            "gradient": _summary([r["gradient"] for r in ranks]),
            "messages": {int(size): _summary([r["messages"][size] for r in ranks]) for size in ranks[0]["messages"]},
            "seconds": time.perf_counter() - started}


def _wait(procs: list[subprocess.Popen], deadline: float, out: Path, timeout_s: float) -> None:
    """Until every rank exited 0; the first rank that fails, or the deadline, raises."""
    while True:
        codes = [proc.poll() for proc in procs]
        failed = [rank for rank, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            raise AllreduceBenchError(f"all-reduce benchmark with {len(procs)} ranks: rank {failed[0]} exited "
                                      f"with code {codes[failed[0]]}; log {out / f'rank{failed[0]}.log'}")
        if None not in codes:
            return
        if time.perf_counter() > deadline:
            raise AllreduceBenchError(f"all-reduce benchmark with {len(procs)} ranks did not finish within "
                                      f"{timeout_s:g} s; logs in {out}")
        time.sleep(POLL_INTERVAL_S)


if __name__ == "__main__":
    exit_process(rank_main())      # also past gloo's teardown, which sometimes aborts after a clean run
