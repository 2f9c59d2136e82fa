"""Run one world size or a sweep of them and write the study's per-configuration metrics files."""
from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path

from .collector import RunResult, collect
from .config import TrainConfig
from .data import build_frame_cache
from .launcher import LaunchError, LaunchOutcome, launch_ranks
from .machine import machine_info
from .model import get_preset
from .threads import available_cpus, is_oversubscribed, plan_threads

DEFAULT_DROP_WARMUP = 2


def metrics_filename(world_size: int) -> str:
    return f"metrics_ws{world_size}.json"


def metrics_document(cfg: TrainConfig, policy: str | int, result: RunResult, outcome: LaunchOutcome | None,
                     plans: list, cpus: list[int], drop_warmup: int, error: str | None = None,
                     pids: list[int] | None = None) -> dict:
    """Everything one launch measured, in the study's per-configuration layout plus the causes.

    ``outcome`` is None for a failed launch; then ``pids`` still names the rank processes.
    """
    first_start = result.first_step_start()
    grad_bytes = next((m["gradient_bytes"] for m in result.metas if "gradient_bytes" in m), None)
    return {
        "config": {**json.loads(cfg.to_json()), "world_size": result.world_size, "threads": str(policy),
                   "rank_batch_size": cfg.rank_batch_size(result.world_size),
                   "global_batch_size": cfg.global_batch_size(result.world_size)},
        "env": {**machine_info(), "cores_used": cpus, "thread_plans": [p.to_dict() for p in plans],
                "oversubscribed": is_oversubscribed(plans, len(cpus)), "gradient_bytes": grad_bytes},
        "launch": {"pids": pids, "wall_time": None, "launch_to_first_step": None} if outcome is None else {
            "launch_time": outcome.launch_time, "wall_time": outcome.wall_time, "port": outcome.port,
            "attempts": outcome.attempts, "pids": outcome.pids, "spawn": outcome.spawn,
            "launch_to_first_step": None if first_start is None else first_start - outcome.launch_time},
        "rank_metas": result.metas,      # per rank: threads in force, pid, start-up timestamps
        "warmup_steps_dropped": drop_warmup,
        "run_step_times": dict(zip(map(str, result.complete_steps), result.step_times())),
        "skew": result.skew(),
        "error": error,
        "records": result.records,
    }


def measure_world_size(cfg: TrainConfig, world_size: int, policy: str | int, run_dir: str | Path,
                       timeout_s: float, drop_warmup: int = DEFAULT_DROP_WARMUP, fault: str = "",
                       spawn: str = "fresh") -> dict:
    """Launch once and return its metrics document; a failed launch raises with its partial document."""
    cpus = available_cpus()
    plans = plan_threads(policy, world_size, cpus, cfg.data_workers)
    build_frame_cache(cfg.data_dir, get_preset(cfg.preset, cfg.use_aux))  # decode once, outside the timed launch
    try:
        outcome = launch_ranks(cfg, plans, run_dir, timeout_s, fault=fault, spawn=spawn)
    except LaunchError as exc:
        partial = metrics_document(cfg, policy, collect(run_dir, world_size), None, plans, cpus, drop_warmup,
                                   error=str(exc), pids=exc.pids)
        raise SweepError(str(exc), partial) from exc
    return metrics_document(cfg, policy, collect(run_dir, world_size), outcome, plans, cpus, drop_warmup)


class SweepError(RuntimeError):
    def __init__(self, message: str, partial: dict):
        super().__init__(message)
        self.partial = partial


def kept_step_times(doc: dict) -> list[float]:
    """Run step times after the dropped warm-up steps."""
    drop = doc["warmup_steps_dropped"]
    return [t for step, t in doc["run_step_times"].items() if int(step) >= drop]


def summarise(doc: dict) -> dict:
    times = kept_step_times(doc)
    median = statistics.median(times) if times else None
    kept = [r for r in doc["records"] if r["step"] >= doc["warmup_steps_dropped"]]
    comm = [r["comm_time"] for r in kept if r.get("comm_time") is not None]
    steps = [r["step_time"] for r in kept]
    return {
        "world_size": doc["config"]["world_size"],
        "threads": doc["config"]["threads"],
        "wall_time": doc["launch"]["wall_time"],
        "launch_to_first_step": doc["launch"]["launch_to_first_step"],
        "median_step_time": median,
        "samples_per_second": doc["config"]["global_batch_size"] / median if median else None,
        "comm_share": sum(comm) / sum(steps) if comm and steps else None,
        "steps_kept": len(times),
        "oversubscribed": doc["env"]["oversubscribed"],
        "error": doc["error"],
    }


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1))


def run_sweep(cfg: TrainConfig, world_sizes: list[int], policy: str | int, out_dir: str | Path,
              timeout_s: float, drop_warmup: int = DEFAULT_DROP_WARMUP, spawn: str = "fresh",
              progress: Callable[[str], None] = print) -> list[dict]:
    """Each world size in turn; files are written as each finishes so a later failure loses nothing."""
    out_dir = Path(out_dir)
    summary: list[dict] = []
    for ws in world_sizes:
        try:
            doc = measure_world_size(cfg, ws, policy, out_dir / "runs" / f"ws{ws}", timeout_s, drop_warmup,
                                     spawn=spawn)
        except SweepError as exc:
            write_json(out_dir / metrics_filename(ws), exc.partial)
            summary.append(summarise(exc.partial))
            write_json(out_dir / "summary.json", summary)
            raise
        write_json(out_dir / metrics_filename(ws), doc)
        row = summarise(doc)
        summary.append(row)
        write_json(out_dir / "summary.json", summary)
        flag = " (oversubscribed)" if row["oversubscribed"] else ""
        progress(f"world size {ws:>2}{flag}: median step {row['median_step_time']:.3f} s, "
                 f"{row['samples_per_second']:.1f} samples/s, wall {row['wall_time']:.1f} s, "
                 f"first step after {row['launch_to_first_step']:.2f} s")
    return summary
