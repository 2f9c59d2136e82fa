"""All ranks of one launch as one torchrun job (``--launcher torchrun``): the numbers of a real torchrun job.

``torchrun --standalone`` runs a c10d rendezvous on this node and starts the same rank entry point
(``python -m lanemodel rank``) once per rank. torchrun gives every rank one environment, so the per-rank
thread plans travel as JSON (``threads.plans_env``) and each rank picks its own by LOCAL_RANK.
torchrun starts each worker in a session of its own, so killing the agent's process group would leave
them running: ``kill_tree`` kills the agent and every descendant, found through /proc.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from lanemodel.engine.worktree import RefCode, start_in_session

AGENT_LOG = "torchrun.log"
RDZV_PORT = 29400


def standalone_args(world_size: int) -> list[str]:
    """One node: torchrun runs its own c10d rendezvous on a free port."""
    return ["--standalone", "--nnodes=1", f"--nproc-per-node={world_size}"]


def node_args(nodes: int, per_node: int, endpoint: str, run_id: str, local_addr: str) -> list[str]:
    """One of ``nodes`` agents meeting at ``endpoint``. Inside a namespace the hostname resolves to nothing
    the other nodes can reach, so each agent is told its own address, and the agent at the endpoint is told
    that it hosts the c10d store."""
    return [f"--nnodes={nodes}", f"--nproc-per-node={per_node}", "--rdzv-backend=c10d",
            f"--rdzv-endpoint={endpoint}:{RDZV_PORT}", f"--rdzv-id={run_id}", f"--local-addr={local_addr}",
            f"--rdzv-conf=is_host={'1' if local_addr == endpoint else '0'}"]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def sigkill(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads, or the process alone when it leads none (a forked rank killed
    before its setsid, a worker that kept its parent's group); gone already is fine."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            continue


class AgentJob:
    """A process that starts the ranks (torchrun's agent, srun), supervised like a rank process (``poll``,
    ``pid``, ``wait``, ``kill_tree``); its output goes to ``log``."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path, code: RefCode | None = None):
        self.proc = start_in_session(command, env, log, code)
        self.pid = self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout=timeout)

    def kill_tree(self) -> None:
        """SIGKILL the agent and every worker (each worker leads a session of its own, so its group too)."""
        for pid in [self.pid, *descendants(self.pid)]:
            sigkill(pid)
        self.proc.wait(timeout=10)


class TorchrunJob(AgentJob):
    """One torchrun agent and its workers."""

    def __init__(self, torchrun_args: list[str], argv: list[str], env: dict[str, str], log: Path,
                 code: RefCode | None = None, wrapper: list[str] | None = None):
        """``torchrun_args``: the agent's options; ``argv``: the rank entry point's; ``wrapper``: a command
        that runs the agent (``ip netns exec NODE`` for an emulated node)."""
        super().__init__([*(wrapper or []), sys.executable, "-m", "torch.distributed.run", *torchrun_args,
                          "--max-restarts=0", "-m", "lanemodel", "rank", *argv], env, log, code)
