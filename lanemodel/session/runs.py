"""Launches through the engine and their files in the results directory: what ``EngineLauncher`` runs for
the session (a test gives the session a fake launcher instead)."""
from __future__ import annotations

import functools
import json
import os
import shutil
import statistics
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from lanemodel.analysis.outcome import PROBE_DIR  # the cause probes
from lanemodel.analysis.stats import median_of_launches
from lanemodel.records import Launch, RunConfig, metrics_path, save_launch
from lanemodel.session.errors import SessionError
from lanemodel.settings import LANE_WORKLOAD, SweepSettings

if TYPE_CHECKING:
    from lanemodel.engine.worktree import RefCode
    from lanemodel.training.config import TrainConfig

SYNTH_FRAMES = 64
SYNTH_SEED = 0
REF_DIR = "ab_ref"      # REF's launches of a --scaling-ab session, apart from the working tree's
TRACE_DIR = "traces"    # profiled launches (--profile-steps) and their torch.profiler traces
LEVER_DIR = "levers"    # the lever study's launches (--levers)


def run_config(opts: SweepSettings) -> RunConfig:
    """The run's configuration, machine and workload, saved with the results and checked before comparing."""
    from lanemodel.engine.machine import machine_info

    machine = machine_info()
    workload, launch, plan = opts.workload, opts.launch, opts.plan
    info = workload_info(opts)
    return RunConfig(workload=info.spec, workload_name=info.name, parameters=info.parameters,
                     parameter_shapes=info.shapes_sha256, data=info.data, data_items=info.items,
                     cpu_model=machine["cpu_model"], cores_available=machine["cores_available"],
                     cores_source=machine["cores_source"], memory_source=machine["memory_source"],
                     physical_cores=machine["physical_cores"], logical_cores=machine["logical_cores"],
                     torch=machine["torch"], preset=workload.preset, scaling=workload.scaling, spawn=launch.spawn,
                     launcher=launch.launcher, nodes=launch.nodes, slurm_nodes=slurm_nodes(launch.launcher),
                     link_gbit=launch.link_gbit if launch.nodes > 1 else None, global_batch=workload.global_batch,
                     steps=workload.steps, drop_warmup=workload.drop_warmup, threads=launch.threads,
                     world_sizes=launch.world_sizes, rounds=plan.rounds, max_rounds=plan.max_rounds,
                     session_budget_s=plan.session_budget_s, precise=bool(plan.precise),
                     inject_comm_delay_ms=workload.inject_comm_delay_ms,
                     inject_step_slowdown=workload.inject_step_slowdown)


def slurm_nodes(launcher: str) -> int | None:
    """The node layout of a Slurm run (``slurmrunner.allocation_nodes``); None for the other launchers. Runs
    whose ranks were spread over a different number of hosts are not compared."""
    from lanemodel.engine.slurmrunner import allocation_nodes

    return allocation_nodes() if launcher == "slurm" else None


def data_dir(opts: SweepSettings) -> Path:
    """The lane detector's data set: --data, or the synthetic one in the results directory."""
    return Path(opts.workload.data or Path(opts.outputs.results_dir) / "data").resolve()


def synthesize_data(opts: SweepSettings, frames: int = SYNTH_FRAMES) -> None:
    """The synthetic frames in the results directory, where the lane detector trains without --data: a copy of
    the set this machine made once (``synthetic_set``)."""
    data = data_dir(opts)
    lane = opts.workload.spec == LANE_WORKLOAD
    if lane and not opts.workload.data and not (data / "label_data.json").exists():
        shutil.copytree(synthetic_set(frames, opts.workload.preset), data, dirs_exist_ok=True)


def synthetic_set(frames: int, preset: str) -> Path:
    """The synthetic frames of ``frames`` and the fixed seed, with the preset's decoded-frame cache, made once
    per machine in the user's cache directory: the files are the same every time (byte for byte), and making
    them took 8-10 s of every session on 2 cores."""
    from lanemodel.training.data import build_frame_cache
    from lanemodel.training.model import get_preset
    from lanemodel.workload.synthset import write_synthetic_dataset

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ddp-lane-bench"
    made = cache / f"synthetic-{frames}-seed{SYNTH_SEED}"
    if not (made / "label_data.json").exists():
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache, prefix=".making-"))
        write_synthetic_dataset(staging, frames=frames, seed=SYNTH_SEED)
        try:
            staging.rename(made)
        except OSError:               # another session made the same set first
            shutil.rmtree(staging, ignore_errors=True)
    build_frame_cache(made, get_preset(preset))
    return made


def workload_info(opts: SweepSettings):
    """The workload checked in this process (``training.contract.inspect``), once per process and workload, the
    synthetic frames made first when the lane detector trains on them; a SessionError says what is wrong."""
    from lanemodel.training.contract import WorkloadError

    synthesize_data(opts)
    cfg = train_config(opts)
    try:
        return _inspected(cfg.workload, cfg.workload_dir, json.dumps(cfg.workload_options(), sort_keys=True),
                          cfg.global_batch_size(min(opts.launch.world_sizes)), cfg.seed)
    except WorkloadError as exc:
        raise SessionError(str(exc)) from None


@functools.cache
def _inspected(spec: str, directory: str, options: str, global_batch: int, seed: int):
    from lanemodel.training.contract import inspect

    return inspect(spec, directory, json.loads(options), global_batch, seed)


def prepare_results_dir(opts: SweepSettings) -> None:
    """Clear the previous run's artefacts (the report must describe this run only)."""
    out = Path(opts.outputs.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("metrics_*.json"):
        old.unlink()
    (out / "ab_ref_run.json").unlink(missing_ok=True)
    (out / "levers.json").unlink(missing_ok=True)
    for sub in ("plots", "runs", REF_DIR, PROBE_DIR, TRACE_DIR, LEVER_DIR):
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / "REPORT.md").unlink(missing_ok=True)


def train_config(opts: SweepSettings, **overrides) -> TrainConfig:
    """The training every launch of this session runs, with per-measurement overrides. A workload of one's own
    is imported from the directory the session runs in."""
    from lanemodel.training.config import TrainConfig

    workload = opts.workload
    own = workload.spec != LANE_WORKLOAD
    settings = dict(data_dir=str(data_dir(opts)), workload=workload.spec, workload_dir=str(Path.cwd()) if own else "",
                    frames="jpeg" if workload.data else "cache", preset=workload.preset, steps=workload.steps,
                    scaling=workload.scaling, global_batch=workload.global_batch, rank_batch=workload.global_batch,
                    comm_delay_ms=workload.inject_comm_delay_ms, step_slowdown_pct=workload.inject_step_slowdown)
    return TrainConfig(**{**settings, **overrides})


def run_one_launch(opts: SweepSettings, cfg: TrainConfig, policy: str, world_size: int, name: str,
                   spawn: str | None = None, on_step=None, code: RefCode | None = None,
                   subdir: str = "", nodes=None, fault: str = "") -> tuple[Launch, str | None]:
    """One launch through the engine; its metrics file is written even when the launch failed.

    ``code``: the ranks run that checked-out version (--scaling-ab); the files go to <results>/ab_ref.
    ``subdir``: files go there instead of the results directory itself (launches outside the statistics).
    ``nodes``: the emulated nodes (--nodes) the ranks are spread over.
    """
    from lanemodel.engine.sweep import measure_world_size
    from lanemodel.engine.threads import parse_policy

    results = Path(opts.outputs.results_dir) / (REF_DIR if code else subdir)
    return _measure_and_save(results, name, lambda: measure_world_size(
        cfg, world_size, parse_policy(policy), results / "runs" / name, opts.launch.launch_timeout,
        opts.workload.drop_warmup, spawn=spawn or opts.launch.spawn, on_step=on_step, launcher=opts.launch.launcher,
        nodes=nodes, code=code, fault=fault))


def _measure_and_save(results: Path, name: str, measure) -> tuple[Launch, str | None]:
    """``measure()`` one launch and write its metrics file, the partial one too when the launch failed."""
    from lanemodel.engine.sweep import SweepError

    error = None
    try:
        launch = measure()
    except SweepError as exc:
        launch, error = exc.partial, str(exc)
    save_launch(launch, metrics_path(results, name))
    return launch, error


def run_profiled(opts: SweepSettings, cfg: TrainConfig, policy: str, world_size: int,
                 on_step=None, nodes=None) -> tuple[dict[str, str], str | None]:
    """One more launch with torch.profiler on (--profile-steps): {"trace <policy> ws<N> rank<R>": path}."""
    from dataclasses import replace

    from lanemodel.training.profiling import trace_path

    name = f"{policy}_ws{world_size}"
    traces = Path(opts.outputs.results_dir) / TRACE_DIR / name
    profiled = replace(cfg, profile_steps=opts.plan.profile_steps, profile_dir=str(traces.resolve()),
                       steps=max(cfg.steps, opts.plan.profile_steps + 2))
    _, error = run_one_launch(opts, profiled, policy, world_size, f"{name}_profiled", on_step=on_step,
                              subdir=TRACE_DIR, nodes=nodes)
    found = {f"trace {policy} ws{world_size} rank{rank}": str(trace_path(traces, rank))
             for rank in range(world_size) if trace_path(traces, rank).exists()}
    return found, error


def run_rank_alone(opts: SweepSettings, cfg: TrainConfig, policy: str, world_size: int,
                   on_step=None) -> tuple[Launch, str | None]:
    """The batch-splitting probe for one world size; its metrics file is written even when it failed."""
    from lanemodel.engine.sweep import measure_rank_alone
    from lanemodel.engine.threads import parse_policy

    results = Path(opts.outputs.results_dir) / PROBE_DIR
    name = f"{policy}_alone_ws{world_size}"
    return _measure_and_save(results, name, lambda: measure_rank_alone(
        cfg, world_size, parse_policy(policy), results / "runs" / name, opts.launch.launch_timeout,
        opts.workload.drop_warmup, spawn=opts.launch.spawn, on_step=on_step, launcher=opts.launch.launcher))


def run_allreduce_bench(opts: SweepSettings, cfg: TrainConfig, policy: str, world_size: int, gradient_bytes: int,
                        nodes=None) -> dict:
    """The all-reduce microbenchmark at one world size (the gradient's buckets, this world size's thread plans
    and transport); kept in <results>/probes/allreduce_<policy>_ws<N>.json. Raises AllreduceBenchError."""
    import json

    from lanemodel.engine.allreduce_bench import bucket_sizes, measure_allreduce
    from lanemodel.engine.threads import available_cpus, parse_policy, plan_threads

    out = Path(opts.outputs.results_dir) / PROBE_DIR
    name = f"allreduce_{policy}_ws{world_size}"
    result = measure_allreduce(plan_threads(parse_policy(policy), world_size, available_cpus()),
                               bucket_sizes(gradient_bytes, cfg.bucket_cap_mb), out / "runs" / name,
                               opts.launch.launch_timeout, nodes=nodes)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    return result


def bandwidth_counts(world_sizes: tuple[int, ...], cores: int) -> list[int]:
    """1, every world size up to the cores, the cores, and one count past them if the sweep goes there."""
    counts = {1, cores} | {ws for ws in world_sizes if ws <= cores}
    if max(world_sizes) > cores:
        counts.add(min(max(world_sizes), 2 * cores))
    return sorted(counts)


def launch_summary(launches: list[Launch]) -> dict:
    """What a benchmark's extra_info carries: enough to gate against it later without the raw files."""
    from lanemodel.analysis.breakdown import breakdown

    first = launches[0]
    step_times = [list(launch.kept_step_times) for launch in launches]
    median = median_of_launches(step_times)
    starts = [launch.launch_to_first_step for launch in launches if launch.launch_to_first_step is not None]
    return {
        "world_size": first.world_size, "threads": first.policy, "preset": first.config["preset"],
        "scaling": first.config["scaling"], "global_batch_size": first.global_batch_size,
        "oversubscribed": first.oversubscribed, "warmup_steps_dropped": first.warmup_steps_dropped,
        "inject_comm_delay_ms": first.config["comm_delay_ms"],
        "inject_step_slowdown": first.config.get("step_slowdown_pct", 0.0),
        "median_step_time": median, "samples_per_second": first.global_batch_size / median,
        "breakdown_shares": asdict(breakdown(launches).shares()),
        "launch_to_first_step": statistics.median(starts) if starts else None,
        "launches": len(launches), "step_times": step_times,
    }


class EngineLauncher:
    """The session's launcher: every launch, probe and microbenchmark through the engine, its files written in
    the results directory. ``data_dir``: the TuSimple-format data set (default: a synthetic one made in the
    results directory); ``nodes``: the emulated nodes (--nodes) every launch is spread over; ``knobs``: training
    knobs every launch sets (``python -m lanemodel sweep --comm-hook ...``)."""

    def __init__(self, opts: SweepSettings, nodes=None, knobs: dict | None = None):
        self.opts, self.nodes, self.knobs = opts, nodes, dict(knobs or {})
        self.fault = ""              # KIND:RANK:STEP (``engine.rank``): how the tests make a launch misbehave
        self.prepared = False

    def prepare(self) -> None:
        """Before the first launch, once: the previous run's files cleared, the synthetic data made."""
        if not self.prepared:
            self.prepared = True
            prepare_results_dir(self.opts)
            synthesize_data(self.opts)

    def train_config(self, **overrides) -> TrainConfig:
        self.prepare()
        return train_config(self.opts, **{**self.knobs, **overrides})

    def launch(self, policy: str, world_size: int, name: str, *, steps: int | None = None,
               code: RefCode | None = None, on_step=None, overrides: dict | None = None,
               subdir: str = "") -> tuple[Launch, str | None]:
        """One launch; ``code``: REF's checked-out code runs it (--scaling-ab)."""
        cfg = self.train_config(**(overrides or {}), **({"steps": steps} if steps else {}))
        return run_one_launch(self.opts, cfg, policy, world_size, name, on_step=on_step, code=code,
                              subdir=subdir, nodes=self.nodes, fault=self.fault)

    def rank_alone(self, policy: str, world_size: int, on_step=None) -> tuple[Launch, str | None]:
        return run_rank_alone(self.opts, self.train_config(), policy, world_size, on_step=on_step)

    def allreduce(self, policy: str, world_size: int, gradient_bytes: int) -> dict:
        return run_allreduce_bench(self.opts, self.train_config(), policy, world_size, gradient_bytes,
                                   nodes=self.nodes)

    def profiled(self, policy: str, world_size: int, on_step=None) -> tuple[dict[str, str], str | None]:
        return run_profiled(self.opts, self.train_config(), policy, world_size, on_step=on_step, nodes=self.nodes)

    def bandwidth(self) -> dict:
        """The memory-bandwidth curve, kept in <results>/probes/bandwidth.json."""
        import json

        from lanemodel.engine.bandwidth import bandwidth_curve
        from lanemodel.engine.threads import available_cpus

        self.prepare()
        cpus = available_cpus()
        curve = bandwidth_curve(bandwidth_counts(self.opts.launch.world_sizes, len(cpus)), cpus)
        out = Path(self.opts.outputs.results_dir) / PROBE_DIR
        out.mkdir(parents=True, exist_ok=True)
        (out / "bandwidth.json").write_text(json.dumps(curve, indent=1))
        return curve
