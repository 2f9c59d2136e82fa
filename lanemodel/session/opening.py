"""A session opened: every check that can refuse it, before any launch, then the session with its launcher,
emulated nodes and comparand. The suite and ``python -m lanemodel sweep`` open sessions the same way, so
that a refusal reads the same in both (pytest exits 4 with it, the CLI 2)."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from lanemodel.analysis.gate import GateSettings, GateSettingsError
from lanemodel.session.against import SavedRuns, resolve_against
from lanemodel.session.errors import SessionError
from lanemodel.session.levers import LeverStudy
from lanemodel.session.memory import MemoryPlan
from lanemodel.session.runs import EngineLauncher
from lanemodel.session.session import Key, ScalingSession, measurement_order, run_config_once
from lanemodel.settings import SettingsError, SweepSettings, check_batch_splits, look_sizes


def gate_settings(opts: SweepSettings) -> GateSettings:
    """The gate's rule parameters; with --scaling-ab, its own (tighter) limit and no session term, since
    REF and the working tree run interleaved in one session. Refused when they cannot make a gate."""
    looks = len(look_sizes(opts.plan.rounds, opts.plan.max_rounds))
    try:
        if opts.ab.ref:
            limit = opts.ab.max_slowdown
            return GateSettings(max_slowdown=limit, max_efficiency_drop=1.0 - 1.0 / limit, alpha=opts.gate.alpha,
                                beta=opts.gate.beta, session_sd=0.0, looks=looks).validate()
        return GateSettings(max_slowdown=opts.gate.max_slowdown,
                            max_efficiency_drop=opts.gate.max_efficiency_drop, alpha=opts.gate.alpha,
                            beta=opts.gate.beta, session_sd=opts.gate.session_sd, looks=looks).validate()
    except GateSettingsError as exc:
        raise SessionError(str(exc)) from None


def check_launcher(opts: SweepSettings) -> None:
    """--launcher slurm: srun there, an allocation or a partition, the world sizes inside the allocation (the
    partition goes to srun as SLURM_PARTITION); --nodes: root and namespaces. Refused naming what is missing."""
    from lanemodel.engine.netns import NodesError, check_can_emulate
    from lanemodel.engine.slurmrunner import SlurmError, prepare_slurm

    try:
        if opts.launch.launcher == "slurm":
            prepare_slurm(opts.launch.world_sizes, opts.launch.slurm_partition)
        if opts.launch.nodes > 1:
            check_can_emulate()
    except (SlurmError, NodesError) as exc:
        raise SessionError(str(exc)) from None


def check_before_collection(opts: SweepSettings) -> None:
    """What can be refused from the options alone, before a session knows what it will measure: the launcher
    and the gate's parameters."""
    check_launcher(opts)
    gate_settings(opts)


def check_measurable(opts: SweepSettings) -> None:
    """Refused when the batch does not split over every world size."""
    try:
        check_batch_splits(opts)
    except SettingsError as exc:
        raise SessionError(str(exc)) from None


def check_memory(opts: SweepSettings) -> MemoryPlan:
    """The session's memory plan; refused when not even the smallest world size can fit (``session.memory``)."""
    from lanemodel.engine.cgroup import usable_memory

    plan = MemoryPlan(usable_memory)
    smallest = min(opts.launch.world_sizes)
    reason = plan.refusal(smallest)
    if reason:
        raise SessionError(f"--world-sizes {','.join(map(str, opts.launch.world_sizes))}: nothing fits in memory: "
                           f"world size {smallest} {reason}")
    return plan


def check_data(opts: SweepSettings) -> None:
    """--data: a directory in TuSimple's layout whose every labelled image is there and which holds at least one
    global batch of frames; refused naming the input and what is wrong."""
    from lanemodel.training.config import TrainConfig
    from lanemodel.training.data import split_label_files
    from lanemodel.workload.tusimple import TuSimpleFormatError, missing_images, read_label_files

    if not opts.workload.data:
        return
    root = Path(opts.workload.data)
    if not root.is_dir():
        raise SessionError(f"--data {root}: no such directory")
    try:
        labels = read_label_files(split_label_files(root, "train"))
    except (TuSimpleFormatError, FileNotFoundError) as exc:
        raise SessionError(f"--data {root}: {exc}") from None
    if missing := missing_images(root, labels):
        raise SessionError(f"--data {root}: {len(missing)} of {len(labels)} labelled images are missing, the first "
                           f"{root / missing[0].raw_file} (named at {missing[0].source}:{missing[0].line})")
    batch = TrainConfig("", scaling=opts.workload.scaling, global_batch=opts.workload.global_batch,
                        rank_batch=opts.workload.global_batch)
    needed = max(batch.global_batch_size(ws) for ws in opts.launch.world_sizes)
    if len(labels) < needed:
        raise SessionError(f"--data {root}: {len(labels)} training frames, fewer than one global batch of {needed}")


def check_workload(opts: SweepSettings) -> None:
    """The workload imported, built and one batch of it trained in this process (``training.contract``);
    refused with what is wrong, before any launch."""
    from lanemodel.session.runs import workload_info

    workload_info(opts)


def make_nodes(opts: SweepSettings, cleanup: ExitStack):
    """The emulated nodes every launch runs on (--nodes K > 1), removed when ``cleanup`` closes; else None."""
    from lanemodel.engine.netns import NodesError, emulated_nodes

    if opts.launch.nodes <= 1:
        return None
    try:
        return cleanup.enter_context(emulated_nodes(opts.launch.nodes, opts.launch.link_gbit))
    except NodesError as exc:
        raise SessionError(str(exc)) from None


def open_session(opts: SweepSettings, *, keys: list[Key] | None = None, saved: SavedRuns | None = None,
                 root: Path | None = None, cores: int | None = None,
                 write: Callable[[str], None] | None = None, live: bool | None = None,
                 series_name: Callable[[Key], str] | None = None, knobs: dict | None = None,
                 inspect_workload: bool = True) -> ScalingSession:
    """The session for ``keys`` (default: every policy and world size), refused with a SessionError before any
    launch when it cannot run; REF's worktree and the emulated nodes go when the session closes. ``knobs``:
    training knobs every launch sets; ``inspect_workload`` False: the workload is not imported and tried now (a
    session that only lists what it would launch)."""
    from lanemodel.engine.threads import available_cpus

    check_measurable(opts)
    gate = gate_settings(opts)
    memory = check_memory(opts)
    check_data(opts)
    config = run_config_once(opts)
    cleanup = ExitStack()
    try:
        nodes = make_nodes(opts, cleanup)
        order = measurement_order(opts, keys)
        planned = {(policy, ws) for policy in opts.launch.threads for ws in opts.launch.world_sizes}
        against = resolve_against(opts, saved or SavedRuns(), planned, root or Path.cwd(), cleanup, config)
        if inspect_workload:
            check_workload(opts)
    except BaseException:
        cleanup.close()
        raise
    session = ScalingSession(opts, gate, EngineLauncher(opts, nodes, knobs), order=order, against=against,
                             cores=cores or len(available_cpus()), write=write, live=live,
                             memory=memory, config=config, **({"series_name": series_name} if series_name else {}))
    session.cleanup.enter_context(cleanup)
    return session


def check_levers(opts: SweepSettings) -> tuple:
    """--levers: every value checked at every world size before any launch; refused naming a bad one."""
    from lanemodel.engine.leverspec import check_runnable, parse_levers
    from lanemodel.session.runs import train_config

    try:
        check_batch_splits(opts)
        values = parse_levers(opts.levers.spec)
        check_runnable(values, train_config(opts), opts.launch.world_sizes)
    except SettingsError as exc:
        raise SessionError(str(exc)) from None
    return values


def open_lever_study(opts: SweepSettings, values: tuple, write: Callable[[str], None] | None = None,
                     live: bool | None = None) -> LeverStudy:
    """The lever study: its values, the gradient's shapes (for the predicted bytes), the emulated nodes with
    --nodes; its warm-up (``LeverStudy.warm_up``) is the caller's, once it owns the study."""
    from lanemodel.engine.leverspec import gradient_shapes
    from lanemodel.engine.progress import Progress

    cleanup = ExitStack()
    try:
        launcher = EngineLauncher(opts, nodes=make_nodes(opts, cleanup))
    except BaseException:
        cleanup.close()
        raise
    launches = len(opts.launch.world_sizes) * opts.levers.blocks * (len(values) + 1 + 2)
    study = LeverStudy(opts, opts.levers.spec, values, launcher, gradient_shapes(launcher.train_config()),
                       progress=Progress(opts.workload.steps, launches, write, live=live))
    study.cleanup.enter_context(cleanup)
    return study
