"""Whether gloo on this machine can all-reduce what a communication hook sends, asked before any launch:
a hook whose dtype gloo lacks would otherwise fail inside every rank's first backward."""
from __future__ import annotations

from lanemodel.training.config import HALF_DTYPES, parse_comm_hook


def gloo_refusal(dtype_name: str) -> str | None:
    """gloo's own error for an all-reduce of ``dtype_name`` (a one-rank group in this process, made and dropped
    here, no global state touched), or None when it can."""
    import torch
    import torch.distributed as dist

    try:
        group = dist.ProcessGroupGloo(dist.HashStore(), 0, 1)
        group.allreduce([torch.ones(2, dtype=getattr(torch, dtype_name))]).wait()
    except RuntimeError as exc:
        return str(exc).splitlines()[0]
    return None


def check_comm_hook(comm_hook: str) -> None:
    """A ValueError naming the hook and gloo's reason when gloo here cannot all-reduce its dtype."""
    kind, _ = parse_comm_hook(comm_hook)
    if kind in HALF_DTYPES and (why := gloo_refusal(HALF_DTYPES[kind])):
        raise ValueError(f"comm_hook {comm_hook}: gloo on this machine cannot all-reduce {HALF_DTYPES[kind]} "
                         f"({why})")
