"""The typed record model every layer shares: a rank's step record, one launch, and series of launches.

A rank streams ``StepRecord``s; the collector turns one launch's records into a ``Launch`` (written as a
metrics file); the analysis reads ``Launch``es grouped by (thread policy, world size). Warm-up steps are
split from kept steps once, when a ``Launch`` is built, so no consumer filters them again. Pure Python:
importable without torch or pytest.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

# 2: "schema_version" written into every metrics file and saved run. Version 1 is the layout before
# versions existed (no key); it holds the same fields and is read as is.
# 3: step records carry the CPU fields (cpu_time ... ctx_switches_involuntary, main_thread_run_queue_wait) and
# comm_busy_time; in older
# files they are None.
SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)


class SchemaError(ValueError):
    """A metrics file or saved run this version cannot read; the message names the file and the problem."""


@dataclass(frozen=True)
class StepRecord:
    """One rank's one step: the study's fields first, then the measured parts that explain them."""

    step: int
    loss: float
    batch_size: int              # this rank's
    global_batch_size: int
    lr: float
    step_time: float             # seconds, perf_counter
    total_elapsed: float         # seconds since this rank's first step began
    start_time: float            # Unix seconds
    end_time: float
    data_time: float
    forward_time: float
    backward_time: float
    comm_time: float | None      # all-reduce seconds of every bucket (None: not instrumented)
    comm_exposed_time: float | None   # all-reduce time backward waited for after the last bucket launched
    comm_buckets: int | None
    optimizer_time: float
    rank: int
    world_size: int
    # What the kernel measured during the step (None: not measured, e.g. a version 2 file or no /proc):
    cpu_time: float | None = None             # CPU seconds of every thread of this rank's process
    main_thread_cpu_time: float | None = None   # CPU seconds of the training (main) thread
    run_queue_wait: float | None = None       # seconds this rank's threads were runnable but had no core
    ctx_switches_voluntary: int | None = None
    ctx_switches_involuntary: int | None = None
    comm_busy_time: float | None = None       # seconds at least one bucket's all-reduce was in flight
    main_thread_run_queue_wait: float | None = None   # seconds the training thread was runnable but had no core
    comm_bytes: int | None = None             # bytes this rank's hook sent for the step's all-reduce

    @classmethod
    def from_dict(cls, data: dict) -> StepRecord:
        missing = [f.name for f in fields(cls) if f.name not in data and f.default is MISSING]
        if missing:
            raise SchemaError(f"step record lacks {', '.join(missing)}")
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass
class Launch:
    """One launch at one world size: configuration, machine, every rank's records and the run's step times.

    ``run_step_times`` maps every step all ranks completed to the slowest rank's seconds (a step's time
    for the run). ``kept_steps`` are those at or after ``warmup_steps_dropped``: the samples statistics use.
    """

    config: dict
    env: dict
    launch: dict
    warmup_steps_dropped: int
    run_step_times: dict[int, float]
    skew: list[dict]
    records: list[StepRecord]
    rank_metas: list[dict] = field(default_factory=list)
    error: str | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        steps = sorted(self.run_step_times.items(), key=lambda item: int(item[0]))
        self.run_step_times = {int(step): float(seconds) for step, seconds in steps}
        self.kept_steps: tuple[int, ...] = tuple(s for s in self.run_step_times if s >= self.warmup_steps_dropped)
        self.kept_step_times: tuple[float, ...] = tuple(self.run_step_times[s] for s in self.kept_steps)
        kept = set(self.kept_steps)
        by_step: dict[int, list[StepRecord]] = defaultdict(list)
        for record in self.records:
            if record.step in kept:
                by_step[record.step].append(record)
        self.kept_records_by_step: dict[int, list[StepRecord]] = dict(sorted(by_step.items()))

    @property
    def world_size(self) -> int:
        return int(self.config["world_size"])

    @property
    def policy(self) -> str:
        return str(self.config["threads"])

    @property
    def global_batch_size(self) -> int:
        return int(self.config["global_batch_size"])

    @property
    def oversubscribed(self) -> bool:
        return bool(self.env.get("oversubscribed"))

    @property
    def finished(self) -> bool:
        return not self.error

    @property
    def kept_records(self) -> list[StepRecord]:
        """Records of kept steps that every rank completed, in (step, rank) order."""
        return [r for records in self.kept_records_by_step.values() for r in records]

    @property
    def wall_time(self) -> float | None:
        return self.launch.get("wall_time") if self.launch else None

    @property
    def launch_to_first_step(self) -> float | None:
        return self.launch.get("launch_to_first_step") if self.launch else None

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "config": self.config, "env": self.env, "launch": self.launch,
                "rank_metas": self.rank_metas, "warmup_steps_dropped": self.warmup_steps_dropped,
                "run_step_times": {str(s): t for s, t in self.run_step_times.items()}, "skew": self.skew,
                "error": self.error, "records": [asdict(r) for r in self.records]}

    @classmethod
    def from_dict(cls, doc: dict, source: str = "metrics document") -> Launch:
        version = check_version(doc, source)
        try:
            return cls(config=doc["config"], env=doc["env"], launch=doc["launch"] or {},
                       warmup_steps_dropped=int(doc["warmup_steps_dropped"]),
                       run_step_times=doc["run_step_times"], skew=doc.get("skew", []),
                       records=[StepRecord.from_dict(r) for r in doc["records"]],
                       rank_metas=doc.get("rank_metas", []), error=doc.get("error"), schema_version=version)
        except KeyError as exc:
            raise SchemaError(f"{source}: missing field {exc.args[0]!r}") from None
        except SchemaError as exc:
            raise SchemaError(f"{source}: {exc}") from None


def check_version(doc: dict, source: str) -> int:
    """The schema version of a metrics file or saved run; an unknown one is refused, naming it."""
    if not isinstance(doc, dict):
        raise SchemaError(f"{source}: not a JSON object")
    version = doc.get("schema_version", 1)
    if version not in READABLE_VERSIONS:
        raise SchemaError(f"{source}: schema version {version!r} is not one this version reads "
                          f"({', '.join(map(str, READABLE_VERSIONS))}); it was written by another version")
    return int(version)


def load_launch(path: str | Path) -> Launch:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SchemaError(f"metrics file {path} is not readable JSON: {exc}") from None
    return Launch.from_dict(doc, f"metrics file {path}")


def save_launch(launch: Launch, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(launch.to_dict(), indent=1))
    return path


# Launches of one session keyed by (thread policy, world size): the shape the analysis consumes.
LaunchSeries = dict[tuple[str, int], list[Launch]]


def by_policy(series: LaunchSeries) -> dict[str, dict[int, list[Launch]]]:
    """Finished launches per policy and world size; failed launches are left out of the statistics."""
    grouped: dict[str, dict[int, list[Launch]]] = defaultdict(dict)
    for (policy, world_size), launches in sorted(series.items()):
        finished = [launch for launch in launches if launch.finished and launch.kept_steps]
        if finished:
            grouped[policy][world_size] = finished
    return dict(grouped)


def finished_kept_records(launches: list[Launch]) -> list[StepRecord]:
    """Every kept step record of the launches that finished (a failed one's records stay out of statistics)."""
    return [record for launch in launches if launch.finished for record in launch.kept_records]


def launch_name(policy: str, world_size: int, index: int) -> str:
    return f"{policy}_ws{world_size}_launch{index}"


WARMUP_SUFFIX = "_warmup"    # a warm-up launch's name ends so: run and saved, never in the statistics


def warmup_name(policy: str, world_size: int) -> str:
    return f"{policy}_ws{world_size}{WARMUP_SUFFIX}"


def metrics_path(results_dir: Path, name: str) -> Path:
    return Path(results_dir) / f"metrics_{name}.json"


def load_results_dir(results_dir: str | Path) -> LaunchSeries:
    """Every launch a results directory holds (``metrics_*.json``), keyed by (policy, world size); warm-up
    launches (``metrics_*_warmup.json``) are left out, as the suite leaves them out of its statistics.

    A file of another schema version, or not a metrics file at all, is an error naming it.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise SchemaError(f"results directory {results_dir} does not exist")
    series: LaunchSeries = {}
    for path in sorted(results_dir.glob("metrics_*.json")):
        if path.stem.endswith(WARMUP_SUFFIX):
            continue
        launch = load_launch(path)
        series.setdefault((launch.policy, launch.world_size), []).append(launch)
    if not series:
        raise SchemaError(f"results directory {results_dir} holds no metrics_*.json file")
    return series


LANE_WORKLOAD = "lanemodel.training.lane:LaneDetection"     # the default workload (``training.contract``)

def _comparable(default=MISSING, recorded_only: bool = False):
    """A RunConfig field two runs must share to be compared (``default``: what a saved run without the field, from
    before it existed, was measured with; ``recorded_only``: compared only where both runs recorded it)."""
    return field(default=default, metadata={"comparable": True, "recorded_only": recorded_only})


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """A run's configuration and machine: built once per session, saved with its results (``scaling.config``),
    and the definition of comparability: two runs are compared only where every comparable field is equal.
    Injected slowdowns are not comparable fields: they stand for a code change the gate must catch."""

    workload: str = _comparable(LANE_WORKLOAD)      # MODULE:ATTR (runs saved before workloads: the lane detector)
    workload_name: str | None = None
    parameters: int | None = _comparable(None, recorded_only=True)
    parameter_shapes: str | None = _comparable(None, recorded_only=True)  # digest of every parameter's shape
    data: str | None = None                         # the workload's account of its data set
    data_items: int | None = None
    cpu_model: str | None = _comparable()
    cores_available: int | None = _comparable()
    cores_source: str | None = None                 # the affinity mask or the CPU quota, as found
    memory_source: str | None = None                # MemAvailable or the cgroup's limit, as found
    physical_cores: int | None = None
    logical_cores: int | None = None
    torch: str | None = _comparable()
    preset: str | None = _comparable()
    scaling: str | None = _comparable()
    spawn: str | None = _comparable()
    launcher: str = _comparable("embedded")
    nodes: int = _comparable(1)
    slurm_nodes: int | None = _comparable(None)     # hosts a Slurm run's ranks were spread over
    link_gbit: float | None = _comparable(None)     # emulated nodes' link rate
    global_batch: int | None = _comparable()
    steps: int | None = _comparable()
    drop_warmup: int | None = _comparable()
    threads: tuple[str, ...] = ()
    world_sizes: tuple[int, ...] = ()
    rounds: int | None = None
    max_rounds: int | None = None
    session_budget_s: float | None = None
    precise: bool = False
    inject_comm_delay_ms: float = 0.0
    inject_step_slowdown: float = 0.0

    def as_json(self) -> dict:
        doc = asdict(self)
        return {**doc, "threads": list(self.threads), "world_sizes": list(self.world_sizes)}

    @classmethod
    def from_json(cls, doc: dict) -> RunConfig:
        """A saved ``scaling.config``; fields it lacks take what runs saved before them were measured with."""
        known = {spec.name for spec in fields(cls)}
        given = {name: value for name, value in doc.items() if name in known}
        given.update({name: tuple(given[name]) for name in ("threads", "world_sizes") if name in given})
        missing = {spec.name: None for spec in fields(cls)
                   if spec.name not in given and spec.default is MISSING and spec.default_factory is MISSING}
        return cls(**{**missing, **given})

    def differences(self, other: RunConfig) -> list[tuple[str, object, object]]:
        """(field, this value, other value) for every comparable field on which the two runs differ; a field
        runs saved before it existed do not record is compared only where both runs recorded it."""
        def differs(spec) -> bool:
            mine, theirs = getattr(self, spec.name), getattr(other, spec.name)
            if spec.metadata.get("recorded_only") and (mine is None or theirs is None):
                return False
            return mine != theirs
        return [(spec.name, getattr(self, spec.name), getattr(other, spec.name)) for spec in fields(self)
                if spec.metadata.get("comparable") and differs(spec)]
