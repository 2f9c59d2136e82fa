"""Thread and core budget per rank: every knob explicit, set before torch starts, and recorded.

``naive`` reproduces library defaults (each rank takes every core it sees), ``tuned`` gives each rank
floor(cores / N) threads on its own cores, an integer K gives every rank K threads without pinning.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from lanemodel.engine.cgroup import cpu_quota, usable_cores
from lanemodel.settings import check_policy

POLICIES = ("naive", "tuned")
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
ENV_INTRA = "LANEBENCH_INTRA_OP_THREADS"
ENV_INTER = "LANEBENCH_INTER_OP_THREADS"
ENV_CPUS = "LANEBENCH_CPUS"
ENV_PLANS = "LANEBENCH_THREAD_PLANS"     # every rank's plan as JSON, when one launcher process starts them all


def parse_policy(text: str) -> str | int:
    """'naive', 'tuned' or a positive thread count (the text checked as the --threads option checks it)."""
    checked = check_policy(text)
    return checked if checked in POLICIES else int(checked)


def available_cpus() -> list[int]:
    """The CPUs a measurement plans for: the affinity mask, cut to the CPU quota's whole CPUs (a container's
    ``--cpus=1`` leaves the mask at every CPU of the host; ``cgroup.usable_cores``)."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[:usable_cores(len(cpus), cpu_quota()).count]


@dataclass(frozen=True)
class ThreadPlan:
    """One rank's budget. None means 'library default', which the rank records as it finds it."""

    policy: str
    intra_op: int | None
    inter_op: int | None
    cpus: tuple[int, ...] | None
    data_workers: int

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """The child's environment: thread variables set, or removed so defaults really apply."""
        env = {k: v for k, v in base.items() if k not in THREAD_ENV_VARS + (ENV_INTRA, ENV_INTER, ENV_CPUS)}
        if self.intra_op is not None:
            env.update({var: str(self.intra_op) for var in THREAD_ENV_VARS})
            env[ENV_INTRA] = str(self.intra_op)
        if self.inter_op is not None:
            env[ENV_INTER] = str(self.inter_op)
        if self.cpus is not None:
            env[ENV_CPUS] = ",".join(map(str, self.cpus))
        return env

    def threads_used(self, cpu_count: int) -> int:
        """Busy threads this rank can run at once: compute threads plus data workers."""
        return (self.intra_op if self.intra_op is not None else cpu_count) + self.data_workers

    def to_dict(self) -> dict:
        return asdict(self)


def plan_threads(policy: str | int, world_size: int, cpus: list[int], data_workers: int = 0) -> list[ThreadPlan]:
    """Budgets for ranks 0..N-1. Tuned ranks share cores only when there are more ranks than cores."""
    if world_size < 1:
        raise ValueError(f"world size must be at least 1, got {world_size}")
    if policy == "naive":
        return [ThreadPlan("naive", None, None, None, data_workers) for _ in range(world_size)]
    if isinstance(policy, int):
        return [ThreadPlan(str(policy), policy, 1, None, data_workers) for _ in range(world_size)]
    per_rank = len(cpus) // world_size
    plans = []
    for rank in range(world_size):
        if per_rank >= 1:
            cores = tuple(cpus[rank * per_rank:(rank + 1) * per_rank])
        else:
            cores = (cpus[rank % len(cpus)],)
        threads = max(1, len(cores) - data_workers)
        plans.append(ThreadPlan("tuned", threads, 1, cores, data_workers))
    return plans


def is_oversubscribed(plans: list[ThreadPlan], cpu_count: int) -> bool:
    """More runnable threads than cores: ranks x threads (data workers included) > cores available."""
    return sum(p.threads_used(cpu_count) for p in plans) > cpu_count


def plans_env(plans: list[ThreadPlan], base: dict[str, str]) -> dict[str, str]:
    """An environment that carries every rank's plan, for launchers (torchrun) that give all ranks one
    environment: each rank picks its own by LOCAL_RANK (``apply_plan_from_env``)."""
    env = {k: v for k, v in base.items() if k not in THREAD_ENV_VARS + (ENV_INTRA, ENV_INTER, ENV_CPUS)}
    env[ENV_PLANS] = json.dumps([plan.to_dict() for plan in plans])
    return env


def _select_own_plan() -> None:
    """Under torchrun: this rank's plan from ENV_PLANS becomes its environment (before torch is imported,
    so that the OpenMP variables take effect)."""
    found = json.loads(os.environ[ENV_PLANS])[int(os.environ.get("LOCAL_RANK", "0"))]
    plan = ThreadPlan(**{**found, "cpus": tuple(found["cpus"]) if found["cpus"] is not None else None})
    wanted = plan.env(dict(os.environ))
    for key in set(os.environ) - set(wanted):
        del os.environ[key]
    os.environ.update(wanted)


def apply_plan_from_env() -> dict:
    """In a rank, before any torch work: apply the launcher's budget and report what is in force."""
    if os.environ.get(ENV_PLANS):
        _select_own_plan()
    import torch

    cpus = os.environ.get(ENV_CPUS)
    if cpus:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    if os.environ.get(ENV_INTRA):
        torch.set_num_threads(int(os.environ[ENV_INTRA]))
    if os.environ.get(ENV_INTER):
        torch.set_num_interop_threads(int(os.environ[ENV_INTER]))
    return {
        "intra_op_threads": torch.get_num_threads(),
        "inter_op_threads": torch.get_num_interop_threads(),
        "affinity": sorted(os.sched_getaffinity(0)),
        **{var: os.environ.get(var) for var in THREAD_ENV_VARS},
    }
