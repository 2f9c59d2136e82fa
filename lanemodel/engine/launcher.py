"""Start N rank processes on loopback, supervise them, and leave nothing running afterwards.

Every rank runs in its own session so that it and its children (DataLoader workers) can be killed
as a group. A rank that fails ends the run at once: waiting would only leave the others blocked in
a collective until gloo's timeout.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lanemodel.engine.cgroup import oom_kill_count
from lanemodel.engine.forkserver import ForkedRank, fork_server_ready
from lanemodel.engine.interrupts import starting, terminate_as_interrupt
from lanemodel.engine.netns import NODE_INTERFACE, EmulatedNodes, netns_command
from lanemodel.engine.progress import StepCallback
from lanemodel.engine.recorder import ENV_LAUNCH_TIME, error_path, records_path
from lanemodel.engine.slurmrunner import SRUN_LOG, SrunJob, srun_args
from lanemodel.engine.threads import ThreadPlan, plans_env
from lanemodel.engine.torchrunner import AGENT_LOG, AgentJob, TorchrunJob, node_args, sigkill, standalone_args
from lanemodel.engine.worktree import RefCode, start_in_session
from lanemodel.settings import LAUNCHERS, SPAWN_METHODS
from lanemodel.training.config import TrainConfig

POLL_INTERVAL_S = 0.05
PORT_ATTEMPTS = 3
PORT_IN_USE_MARKERS = ("address already in use", "EADDRINUSE", "Address in use")


class LaunchError(RuntimeError):
    """A run that did not finish; ``run_dir`` still holds every step the ranks completed."""

    def __init__(self, message: str, run_dir: Path, pids: list[int] | None = None):
        super().__init__(message)
        self.run_dir = run_dir
        self.pids = pids or []


@dataclass
class LaunchOutcome:
    run_dir: Path
    world_size: int
    launch_time: float                  # Unix time the first rank was started
    wall_time: float                    # seconds from start to the last rank's exit
    port: int
    attempts: int
    pids: list[int]
    spawn: str
    plans: list[ThreadPlan] = field(default_factory=list)
    launcher: str = "embedded"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_path(run_dir: Path, rank: int) -> Path:
    return run_dir / f"rank{rank}.log"


def _rank_env(plan: ThreadPlan, rank: int, world_size: int, port: int, launch_time: float) -> dict[str, str]:
    env = plan.env(dict(os.environ))
    env.update({"RANK": str(rank), "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(rank),
                "LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                ENV_LAUNCH_TIME: repr(launch_time), "PYTHONUNBUFFERED": "1"})
    return env


def kill_all(procs: list) -> None:
    """SIGKILL every process group (torchrun and srun jobs: their own ``kill_tree``) and reap them."""
    for proc in procs:
        if isinstance(proc, AgentJob):
            proc.kill_tree()
        elif proc.poll() is None:
            sigkill(proc.pid)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a process in uninterruptible sleep; say so rather than hang
            print(f"warning: rank process {proc.pid} did not exit after SIGKILL", file=sys.stderr)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _describe_failure(run_dir: Path, failed: dict[int, int]) -> str:
    """Name the rank that caused the failure: one killed by a signal, else the earliest to raise."""
    signalled = {r: c for r, c in failed.items() if c < 0}
    if signalled:
        rank, code = min(signalled.items())
        return f"rank {rank} was killed by signal {signal.Signals(-code).name}"
    errors = {}
    for rank in failed:
        path = error_path(run_dir, rank)
        if path.exists():
            errors[rank] = json.loads(path.read_text())
    if errors:
        first = min(errors.values(), key=lambda e: e["time"])
        return f"rank {first['rank']} raised {first['error']}\n{first['traceback']}"
    rank, code = min(failed.items())
    return f"rank {rank} exited with code {code}; log tail:\n{_tail(log_path(run_dir, rank))}"


def _port_taken(run_dir: Path, world_size: int) -> bool:
    text = " ".join(_tail(log_path(run_dir, r), 60) for r in range(world_size))
    return any(marker in text for marker in PORT_IN_USE_MARKERS)


def _clear_rank_files(run_dir: Path) -> None:
    for path in run_dir.glob("rank*"):
        path.unlink()


def _start_rank(spawn: str, argv: list[str], env: dict[str, str], log: Path, code: RefCode | None = None):
    """A fresh interpreter (what torchrun does), or a fork of the pre-imported server.

    With ``code`` (another version of the project, ``worktree``) the interpreter starts in its directory and
    imports that version's ``lanemodel``.
    """
    if spawn == "forkserver":
        return ForkedRank(argv, env, log)
    return start_in_session([sys.executable, "-m", "lanemodel", "rank", *argv], env, log, code)


def launch_ranks(cfg: TrainConfig, plans: list[ThreadPlan], run_dir: str | Path, timeout_s: float,
                 fault: str = "", spawn: str = "fresh", on_step: StepCallback | None = None,
                 code: RefCode | None = None, launcher: str = "embedded",
                 nodes: EmulatedNodes | None = None) -> LaunchOutcome:
    """Run one training with len(plans) ranks; raise LaunchError on a failure or when ``timeout_s`` passes.

    ``on_step`` is called with rank 0's finished steps whenever that count grows (live progress).
    ``code``: ranks run another version of the project (fresh interpreters only).
    ``launcher``: "embedded" starts every rank itself; "torchrun" starts one torchrun job (--standalone) that
    starts them (fresh interpreters), with the same records, thread plans, faults and timeout.
    ``nodes``: emulated nodes (``netns``): one torchrun agent per node, each inside its namespace, the ranks
    split evenly over them and talking over the rate-limited links.
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout must be > 0 s, got {timeout_s}")
    if spawn not in SPAWN_METHODS:
        raise ValueError(f"spawn must be one of {SPAWN_METHODS}, got {spawn!r}")
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {LAUNCHERS}, got {launcher!r}")
    if nodes is not None and (launcher != "torchrun" or len(plans) % nodes.nodes):
        raise ValueError(f"emulated nodes need the torchrun launcher and a world size that splits evenly over "
                         f"{nodes.nodes} nodes, got {launcher} and {len(plans)}")
    if (code is not None or launcher != "embedded") and spawn != "fresh":
        raise ValueError("ranks of another code version, of torchrun or of srun start as fresh interpreters only "
                         "(spawn 'fresh')")
    oom_before = oom_kill_count()
    with terminate_as_interrupt():
        try:
            if launcher == "slurm":
                return _launch_slurm(cfg, plans, Path(run_dir).resolve(), timeout_s, fault, on_step, code)
            if launcher == "torchrun":
                return _launch_torchrun(cfg, plans, Path(run_dir).resolve(), timeout_s, fault, on_step, code, nodes)
            return _launch(cfg, plans, Path(run_dir).resolve(), timeout_s, fault, spawn, on_step, code)
        except LaunchError as exc:
            raise _with_oom_kills(exc, oom_before) from None


def _with_oom_kills(exc: LaunchError, before: tuple[int, str] | None) -> LaunchError:
    """A failed launch during which the out-of-memory killer killed processes says so first: a rank killed by
    SIGKILL is otherwise indistinguishable from one killed by hand."""
    after = oom_kill_count()
    if before is None or after is None or after[0] <= before[0]:
        return exc
    kills = after[0] - before[0]
    first, _, rest = str(exc).partition("\n")
    message = (f"{first} (the out-of-memory killer: {kills} process{'es' if kills > 1 else ''} killed during "
               f"this launch; {after[1]} {before[0]} -> {after[0]})" + (f"\n{rest}" if rest else ""))
    return LaunchError(message, exc.run_dir, exc.pids)


def _rank_argv(cfg: TrainConfig, run_dir: Path, fault: str, code: RefCode | None) -> list[str]:
    """The rank entry point's arguments; the config file is written for the code that will read it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.json"
    config_path.write_text(cfg.to_json() if code is None else code.config_json(json.loads(cfg.to_json())))
    return ["--config", str(config_path), "--records-dir", str(run_dir), *(["--fault", fault] if fault else [])]


def _launch_torchrun(cfg: TrainConfig, plans: list[ThreadPlan], run_dir: Path, timeout_s: float, fault: str,
                     on_step: StepCallback | None, code: RefCode | None,
                     nodes: EmulatedNodes | None = None) -> LaunchOutcome:
    """One torchrun job, or one agent per emulated node; the rendezvous port is torchrun's (--standalone) or
    inside namespaces of this run only, so there is nothing to retry."""
    world_size = len(plans)
    argv = _rank_argv(cfg, run_dir, fault, code)
    _clear_rank_files(run_dir)
    launch_time = time.time()
    started = time.perf_counter()


    def start(jobs: list) -> None:
        if nodes is None:
            with starting():
                jobs.append(TorchrunJob(standalone_args(world_size), argv, _agent_env(plans, launch_time),
                                        run_dir / AGENT_LOG, code))
            return
        per_node = world_size // nodes.nodes
        for node in range(nodes.nodes):
            env = {**_agent_env(plans[node * per_node:(node + 1) * per_node], launch_time),
                   "GLOO_SOCKET_IFNAME": NODE_INTERFACE}
            agent = node_args(nodes.nodes, per_node, nodes.address(0), run_dir.name, nodes.address(node))
            with starting():
                jobs.append(TorchrunJob(agent, argv, env, run_dir / f"torchrun_node{node}.log", code,
                                        wrapper=netns_command(nodes, node, [])))

    return _run_agents(start, plans, run_dir, timeout_s, on_step, launch_time, started, 0, "torchrun")


def _launch_slurm(cfg: TrainConfig, plans: list[ThreadPlan], run_dir: Path, timeout_s: float, fault: str,
                  on_step: StepCallback | None, code: RefCode | None) -> LaunchOutcome:
    """One Slurm job step (``slurmrunner``): srun starts one task per rank; the rendezvous is rank 0's."""
    world_size = len(plans)
    argv = _rank_argv(cfg, run_dir, fault, code)
    _clear_rank_files(run_dir)
    port, launch_time, started = free_port(), time.time(), time.perf_counter()
    job_name = f"lanebench-{run_dir.name}-{os.getpid()}"

    def start(jobs: list) -> None:
        env = {**_agent_env(plans, launch_time), "MASTER_PORT": str(port)}
        with starting():
            jobs.append(SrunJob(srun_args(world_size, job_name, env.get("SLURM_PARTITION", "")), argv, env,
                                run_dir / SRUN_LOG, job_name, code))

    return _run_agents(start, plans, run_dir, timeout_s, on_step, launch_time, started, port, "slurm")


def _run_agents(start, plans: list[ThreadPlan], run_dir: Path, timeout_s: float, on_step: StepCallback | None,
                launch_time: float, started: float, port: int, launcher: str) -> LaunchOutcome:
    """Start the launcher's own processes (torchrun agents, srun) and supervise them; a failure is named from
    the ranks' error files or the launcher's log. No port retry: the rendezvous is the launcher's, or rank 0's
    on a port chosen just before."""
    jobs, failed = _start_and_supervise(start, started + timeout_s, run_dir, timeout_s, on_step)
    if failed:
        under = "srun" if launcher == "slurm" else launcher
        raise LaunchError(f"world size {len(plans)} failed under {under}: {_describe_agent_failure(run_dir)}\n"
                          f"records kept in {run_dir}", run_dir, [job.pid for job in jobs])
    return LaunchOutcome(run_dir, len(plans), launch_time, time.perf_counter() - started, port, 1,
                         [job.pid for job in jobs], "fresh", list(plans), launcher)


def _start_and_supervise(start, deadline: float, run_dir: Path, timeout_s: float,
                         on_step: StepCallback | None) -> tuple[list, dict[int, int]]:
    """``start(procs)`` appends each process as it starts it; then supervise them. Whatever started is killed
    on the way out, also when starting failed part-way or the launch timed out."""
    procs: list = []
    try:
        start(procs)
        failed = _supervise(procs, deadline, run_dir, timeout_s, on_step)
    except LaunchError as exc:
        exc.pids = [p.pid for p in procs]
        raise
    finally:
        kill_all(procs)
    return procs, failed


def _agent_env(plans: list[ThreadPlan], launch_time: float) -> dict[str, str]:
    env = plans_env(plans, dict(os.environ))
    env.update({ENV_LAUNCH_TIME: repr(launch_time), "PYTHONUNBUFFERED": "1"})
    return env


def _describe_agent_failure(run_dir: Path) -> str:
    """The earliest rank error, else the agent's own account (it names the failed rank and its exit code)."""
    errors = [json.loads(path.read_text()) for path in run_dir.glob("rank*.error.json")]
    if errors:
        first = min(errors, key=lambda e: e["time"])
        return f"rank {first['rank']} raised {first['error']}\n{first['traceback']}"
    logs = sorted([*run_dir.glob("torchrun*.log"), *run_dir.glob(SRUN_LOG)])
    return "the launcher exited with an error; log tail:\n" + "\n".join(_tail(log, 40) for log in logs)


def _launch(cfg: TrainConfig, plans: list[ThreadPlan], run_dir: Path, timeout_s: float, fault: str, spawn: str,
            on_step: StepCallback | None, code: RefCode | None) -> LaunchOutcome:
    world_size = len(plans)
    argv = _rank_argv(cfg, run_dir, fault, code)
    for attempt in range(1, PORT_ATTEMPTS + 1):
        _clear_rank_files(run_dir)
        port = free_port()
        launch_time = time.time()
        started = time.perf_counter()

        def start(procs: list, port: int = port, launch_time: float = launch_time) -> None:
            if spawn == "forkserver":
                fork_server_ready()
            for rank, plan in enumerate(plans):
                env = _rank_env(plan, rank, world_size, port, launch_time)
                with starting():
                    procs.append(_start_rank(spawn, argv, env, log_path(run_dir, rank), code))

        procs, failed = _start_and_supervise(start, started + timeout_s, run_dir, timeout_s, on_step)
        if not failed:
            return LaunchOutcome(run_dir, world_size, launch_time, time.perf_counter() - started, port, attempt,
                                 [p.pid for p in procs], spawn, list(plans))
        if attempt < PORT_ATTEMPTS and _port_taken(run_dir, world_size):
            continue
        raise LaunchError(f"world size {world_size} failed: {_describe_failure(run_dir, failed)}\n"
                          f"records kept in {run_dir}", run_dir, [p.pid for p in procs])
    raise AssertionError("unreachable")


class StepCounter:
    """Finished steps of one rank, read from its records file only when the file has grown."""

    def __init__(self, path: Path):
        self.path = path
        self.count = 0
        self._size = 0

    def grew(self) -> bool:
        try:
            size = self.path.stat().st_size
        except OSError:
            return False
        if size == self._size:
            return False
        self._size = size
        with self.path.open("rb") as records:
            count = records.read().count(b"\n")
        grew, self.count = count > self.count, count
        return grew


def _supervise(procs: list, deadline: float, run_dir: Path, timeout_s: float,
               on_step: StepCallback | None = None) -> dict[int, int]:
    """Wait for every rank; return {rank: exit code} of failed ranks, empty when all succeeded."""
    steps = StepCounter(records_path(run_dir, 0))
    while True:
        if on_step is not None and steps.grew():
            on_step(steps.count)
        codes = [p.poll() for p in procs]
        failed = {r: c for r, c in enumerate(codes) if c not in (None, 0)}
        if failed:
            time.sleep(POLL_INTERVAL_S)  # let a near-simultaneous signal death be seen with the errors it caused
            failed.update({r: c for r, p in enumerate(procs) if (c := p.poll()) not in (None, 0)})
            return failed
        if all(c == 0 for c in codes):
            return {}
        if time.perf_counter() > deadline:
            running = [r for r, c in enumerate(codes) if c is None]
            kill_all(procs)
            raise LaunchError(f"world size {len(procs)} timed out after {timeout_s:g} s; ranks still running: "
                              f"{running}; the process tree was killed; records kept in {run_dir}", run_dir)
        time.sleep(POLL_INTERVAL_S)
