"""All ranks of one launch as one Slurm job step (``--launcher slurm``): ``srun`` starts one task per rank.

One task per rank, not one torchrun agent per node: srun already starts, places and supervises every task
and tells each its rank (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID), so an agent would add a process and a
rendezvous per node and nothing the records need. Each task maps those variables to torchrun's names
(``adopt_slurm_env``) and takes its thread plan by its local rank, as under torchrun; srun is told
``--cpu-bind=none`` so that the plan's own affinity is the only binding. ``--kill-on-bad-exit`` ends the step
when one task fails; a hung step is cancelled (``scancel``) when the launch times out. Inside an allocation
the step uses its nodes; outside one, srun makes a job of its own in ``--slurm-partition``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from lanemodel.engine.slurmenv import COMMAND_TIMEOUT_S
from lanemodel.engine.torchrunner import AgentJob
from lanemodel.engine.worktree import RefCode

SRUN_LOG = "srun.log"


class SlurmError(ValueError):
    """Slurm cannot run the launches asked for; the message names what is missing."""


def in_allocation(environ=os.environ) -> bool:
    return bool(environ.get("SLURM_JOB_ID"))


def allocation_tasks(environ=os.environ) -> int | None:
    """Tasks the current allocation was granted (salloc -n N), None when it did not say."""
    text = environ.get("SLURM_NTASKS") or environ.get("SLURM_NPROCS")
    return int(text) if text and text.isdigit() else None


def check_slurm(world_sizes: tuple[int, ...], partition: str, environ=os.environ) -> None:
    """Before any launch: srun on PATH, an allocation or a partition, every world size within the allocation."""
    if shutil.which("srun", path=environ.get("PATH")) is None:
        raise SlurmError("--launcher slurm: srun is not on PATH (install Slurm's client, or run inside an "
                         "allocation where it is)")
    if not in_allocation(environ) and not partition:
        raise SlurmError("--launcher slurm outside an allocation needs --slurm-partition (or run inside "
                         "salloc/sbatch)")
    tasks = allocation_tasks(environ) if in_allocation(environ) else None
    if tasks is not None and (too_big := [ws for ws in world_sizes if ws > tasks]):
        raise SlurmError(f"--world-sizes: {too_big[0]} ranks do not fit the allocation's {tasks} tasks "
                         f"(SLURM_NTASKS); ask salloc for more or measure smaller world sizes")


def prepare_slurm(world_sizes: tuple[int, ...], partition: str, environ=os.environ) -> None:
    """``check_slurm`` with the partition given (or srun's own SLURM_PARTITION), which then goes to srun as
    SLURM_PARTITION: what the suite and the sweep CLI do before any launch."""
    check_slurm(world_sizes, partition or environ.get("SLURM_PARTITION", ""), environ)
    if partition:
        environ["SLURM_PARTITION"] = partition


def allocation_nodes(environ=os.environ) -> int:
    """The nodes a Slurm run's ranks may be spread over: the allocation's, 1 for srun's own one-node job."""
    return int(environ.get("SLURM_JOB_NUM_NODES") or 1) if in_allocation(environ) else 1


def srun_args(world_size: int, job_name: str, partition: str, environ=os.environ) -> list[str]:
    args = [f"--ntasks={world_size}", "--cpu-bind=none", "--kill-on-bad-exit=1", "--overcommit",
            f"--job-name={job_name}", "--quiet"]
    if not in_allocation(environ):
        args += [f"--partition={partition}", "--nodes=1"] if partition else ["--nodes=1"]
    return args


class SrunJob(AgentJob):
    """One srun and its tasks."""

    def __init__(self, args: list[str], argv: list[str], env: dict[str, str], log: Path, job_name: str,
                 code: RefCode | None = None):
        self.job_name = job_name
        super().__init__(["srun", *args, sys.executable, "-m", "lanemodel", "rank", *argv], env, log, code)

    def kill_tree(self) -> None:
        """Cancel the step (and srun's own job outside an allocation) first, so that nothing of the launch is
        left in squeue, then SIGKILL srun and what it started here."""
        if self.proc.poll() is None:
            cancel(self.job_name)
        super().kill_tree()


def cancel(job_name: str) -> None:
    """scancel every step and job named ``job_name`` (steps of the current allocation, found through squeue)."""
    try:
        steps = subprocess.run(["squeue", "--steps", "--noheader", "--format=%i %j"], capture_output=True,
                               text=True, timeout=COMMAND_TIMEOUT_S).stdout.split("\n")
        ids = [line.split()[0] for line in steps if line.split()[1:2] == [job_name]]
        subprocess.run(["scancel", "--signal=KILL", *ids], capture_output=True, timeout=COMMAND_TIMEOUT_S) if ids \
            else None
        subprocess.run(["scancel", f"--name={job_name}"], capture_output=True, timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        pass            # the SIGKILL of srun that follows ends the step too (slurmstepd kills its tasks)
