"""A rank started as a Slurm task: srun's variables mapped to the torchrun names the rank entry point reads.

srun tells each task SLURM_PROCID (its rank), SLURM_NTASKS (the step's tasks), SLURM_LOCALID (its index on
its node) and SLURM_STEP_NODELIST; torchrun's RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR are set from them
unless already set (torchrun run under srun sets its own). MASTER_ADDR is the step's first node, which only
the task knows when srun placed it (outside an allocation). Pure standard library: it runs before torch
is imported, so that the thread plan picked by LOCAL_RANK applies first.
"""
from __future__ import annotations

import os
import subprocess

COMMAND_TIMEOUT_S = 20      # scontrol, squeue, scancel


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list ("node[01-04]" -> "node01"), expanded by scontrol."""
    if "[" not in nodelist and "," not in nodelist:
        return nodelist
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                         timeout=COMMAND_TIMEOUT_S, check=True).stdout.split()
    return out[0]


def adopt_slurm_env(environ=os.environ) -> bool:
    """Set the torchrun variables of a Slurm task in ``environ``; False when this is not a Slurm task or
    torchrun's variables are already there."""
    if "RANK" in environ or "SLURM_PROCID" not in environ:
        return False
    environ["RANK"] = environ["SLURM_PROCID"]
    environ["WORLD_SIZE"] = environ.get("SLURM_STEP_NUM_TASKS") or environ["SLURM_NTASKS"]
    environ["LOCAL_RANK"] = environ.get("SLURM_LOCALID", "0")
    if "MASTER_ADDR" not in environ:
        environ["MASTER_ADDR"] = first_host(environ.get("SLURM_STEP_NODELIST") or environ["SLURM_NODELIST"])
    return True
