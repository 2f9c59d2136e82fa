"""Run one world size or a sweep of them and write the study's per-configuration metrics files."""
from __future__ import annotations

import json
import statistics
from dataclasses import replace
from pathlib import Path

from lanemodel.engine.collector import RunResult, collect
from lanemodel.engine.forkserver import shutdown_fork_server
from lanemodel.engine.launcher import LaunchError, LaunchOutcome, launch_ranks
from lanemodel.engine.machine import machine_info
from lanemodel.engine.netns import EmulatedNodes
from lanemodel.engine.progress import Progress, StepCallback
from lanemodel.engine.threads import available_cpus, is_oversubscribed, plan_threads
from lanemodel.engine.worktree import RefCode
from lanemodel.records import Launch, StepRecord, save_launch
from lanemodel.training.config import TrainConfig
from lanemodel.training.train import prepare_data

DEFAULT_DROP_WARMUP = 2


def metrics_filename(world_size: int) -> str:
    return f"metrics_ws{world_size}.json"


def launch_record(cfg: TrainConfig, policy: str | int, result: RunResult, outcome: LaunchOutcome | None,
                  plans: list, cpus: list[int], drop_warmup: int, error: str | None = None,
                  pids: list[int] | None = None) -> Launch:
    """Everything one launch measured, in the study's per-configuration layout plus the causes.

    ``outcome`` is None for a failed launch; then ``pids`` still names the rank processes.
    """
    first_start = result.first_step_start()
    grad_bytes = next((m["gradient_bytes"] for m in result.metas if "gradient_bytes" in m), None)
    return Launch(
        config={**json.loads(cfg.to_json()), "world_size": result.world_size, "threads": str(policy),
                "rank_batch_size": cfg.rank_batch_size(result.world_size),
                "global_batch_size": cfg.global_batch_size(result.world_size)},
        env={**machine_info(), "cores_used": cpus, "thread_plans": [p.to_dict() for p in plans],
             "oversubscribed": is_oversubscribed(plans, len(cpus)), "gradient_bytes": grad_bytes},
        launch={"pids": pids, "wall_time": None, "launch_to_first_step": None} if outcome is None else {
            "launch_time": outcome.launch_time, "wall_time": outcome.wall_time, "port": outcome.port,
            "attempts": outcome.attempts, "pids": outcome.pids, "spawn": outcome.spawn, "launcher": outcome.launcher,
            "launch_to_first_step": None if first_start is None else first_start - outcome.launch_time},
        rank_metas=result.metas,      # per rank: threads in force, pid, start-up timestamps
        warmup_steps_dropped=drop_warmup,
        run_step_times=dict(zip(result.complete_steps, result.step_times())),
        skew=result.skew(), error=error, records=[StepRecord.from_dict(r) for r in result.records])


def measure_world_size(cfg: TrainConfig, world_size: int, policy: str | int, run_dir: str | Path,
                       timeout_s: float, drop_warmup: int = DEFAULT_DROP_WARMUP, fault: str = "",
                       spawn: str = "fresh", on_step: StepCallback | None = None,
                       code: RefCode | None = None, launcher: str = "embedded",
                       nodes: EmulatedNodes | None = None) -> Launch:
    """Launch once and return what it measured; a failed launch raises with its partial record.

    ``code``: the ranks run that version of the project (a same-session A/B launch of REF).
    """
    cpus = available_cpus()
    plans = plan_threads(policy, world_size, cpus, cfg.data_workers)
    return _launch_and_record(cfg, policy, plans, cpus, run_dir, timeout_s, drop_warmup, fault=fault, spawn=spawn,
                              on_step=on_step, code=code, launcher=launcher, nodes=nodes)


def _launch_and_record(cfg: TrainConfig, policy: str | int, plans: list, cpus: list[int], run_dir: str | Path,
                       timeout_s: float, drop_warmup: int, **launch_options) -> Launch:
    """One launch of len(plans) ranks, recorded; a failed launch raises SweepError with its partial record.
    Either record says which code version (--scaling-ab) and which emulated nodes ran it."""
    prepare_data(cfg)     # the lane detector's frames decoded once, outside the timed launch
    try:
        outcome = launch_ranks(cfg, plans, run_dir, timeout_s, **launch_options)
    except LaunchError as exc:
        partial = launch_record(cfg, policy, collect(run_dir, len(plans)), None, plans, cpus, drop_warmup,
                                error=str(exc), pids=exc.pids)
        _record_where(partial, len(plans), launch_options)
        raise SweepError(str(exc), partial) from exc
    launch = launch_record(cfg, policy, collect(run_dir, len(plans)), outcome, plans, cpus, drop_warmup)
    _record_where(launch, len(plans), launch_options)
    return launch


def _record_where(launch: Launch, world_size: int, launch_options: dict) -> None:
    code, nodes = launch_options.get("code"), launch_options.get("nodes")
    if code is not None:
        launch.launch["code"] = {"ref": code.ref, "commit": code.commit}
    if nodes is not None:
        launch.launch["nodes"] = {"nodes": nodes.nodes, "link_gbit": nodes.link_gbit,
                                  "ranks_per_node": world_size // nodes.nodes}


def measure_rank_alone(cfg: TrainConfig, world_size: int, policy: str | int, run_dir: str | Path, timeout_s: float,
                       drop_warmup: int = DEFAULT_DROP_WARMUP, spawn: str = "fresh",
                       on_step: StepCallback | None = None, launcher: str = "embedded") -> Launch:
    """The batch-splitting probe: one process at world size ``world_size``'s per-rank batch, with rank 0's
    thread budget and cores, and no neighbours. Against the full run it separates what a smaller batch
    costs from what sharing the machine with other ranks costs."""
    cpus = available_cpus()
    plan = plan_threads(policy, world_size, cpus, cfg.data_workers)[0]
    alone = replace(cfg, scaling="strong", global_batch=cfg.rank_batch_size(world_size),
                    rank_batch=cfg.rank_batch_size(world_size))
    launch = _launch_and_record(alone, policy, [plan], cpus, run_dir, timeout_s, drop_warmup, spawn=spawn,
                                on_step=on_step, launcher=launcher)
    launch.config["probe"] = {"kind": "rank alone", "for_world_size": world_size}
    return launch


class SweepError(RuntimeError):
    def __init__(self, message: str, partial: Launch):
        super().__init__(message)
        self.partial = partial


def summarise(launch: Launch) -> dict:
    """One line of a sweep's summary.json."""
    times = launch.kept_step_times
    median = statistics.median(times) if times else None
    kept = launch.kept_records
    comm = [r.comm_time for r in kept if r.comm_time is not None]
    steps = [r.step_time for r in kept]
    return {
        "world_size": launch.world_size,
        "threads": launch.policy,
        "wall_time": launch.wall_time,
        "launch_to_first_step": launch.launch_to_first_step,
        "median_step_time": median,
        "samples_per_second": launch.global_batch_size / median if median else None,
        "comm_share": sum(comm) / sum(steps) if comm and steps else None,
        "steps_kept": len(times),
        "oversubscribed": launch.oversubscribed,
        "error": launch.error,
    }


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1))


def run_sweep(cfg: TrainConfig, world_sizes: list[int], policy: str | int, out_dir: str | Path,
              timeout_s: float, drop_warmup: int = DEFAULT_DROP_WARMUP, spawn: str = "fresh",
              progress: Progress | None = None, fault: str = "", launcher: str = "embedded",
              nodes: EmulatedNodes | None = None) -> list[dict]:
    """Each world size in turn; files are written as each finishes so a later failure loses nothing.

    A failure raises SweepError naming the world size, after its partial metrics and the summary so far
    are written. Every process the sweep started (ranks, fork server) is gone when it returns or raises.
    """
    if cfg.steps <= drop_warmup and not cfg.one_epoch:
        raise ValueError(f"--steps {cfg.steps} with --drop-warmup {drop_warmup} leaves no step to measure")
    out_dir = Path(out_dir)
    progress = progress or Progress(cfg.steps, len(world_sizes))
    summary: list[dict] = []
    try:
        for ws in world_sizes:
            with progress.launch(ws, 0) as on_step:
                try:
                    launch = measure_world_size(cfg, ws, policy, out_dir / "runs" / f"ws{ws}", timeout_s,
                                                drop_warmup, fault=fault, spawn=spawn, on_step=on_step,
                                                launcher=launcher, nodes=nodes)
                except SweepError as exc:
                    save_launch(exc.partial, out_dir / metrics_filename(ws))
                    summary.append(summarise(exc.partial))
                    write_json(out_dir / "summary.json", summary)
                    raise
            save_launch(launch, out_dir / metrics_filename(ws))
            row = summarise(launch)
            summary.append(row)
            write_json(out_dir / "summary.json", summary)
            flag = " (oversubscribed)" if row["oversubscribed"] else ""
            progress.note(f"world size {ws:>2}{flag}: median step {row['median_step_time']:.3f} s, "
                          f"{row['samples_per_second']:.1f} samples/s, wall {row['wall_time']:.1f} s, "
                          f"first step after {row['launch_to_first_step']:.2f} s")
    finally:
        shutdown_fork_server()
    return summary
