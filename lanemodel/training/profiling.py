"""torch.profiler traces of a few training steps, one Chrome/Perfetto JSON file per rank.

Steps 0 and 1 are skipped (the first builds DDP's buckets, the second warms the profiler), then
``profile_steps`` steps are recorded: forward and backward operators, the optimizer, and gloo's
all-reduce calls as the communication hook issues them, on one timeline per rank.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch


def trace_path(profile_dir: str | Path, rank: int) -> Path:
    return Path(profile_dir) / f"trace_rank{rank}.json"


class StepTracer(AbstractContextManager):
    """Context manager around the training loop; call ``step()`` after every step."""

    def __init__(self, steps: int, profile_dir: str, rank: int):
        self.profile = None
        if steps > 0:
            path = trace_path(profile_dir, rank)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.profile = torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU],
                schedule=torch.profiler.schedule(wait=1, warmup=1, active=steps, repeat=1),
                on_trace_ready=lambda prof: prof.export_chrome_trace(str(path)))
        self._context = self.profile if self.profile is not None else nullcontext()

    def __enter__(self) -> StepTracer:
        self._context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._context.__exit__(*exc)

    def step(self) -> None:
        if self.profile is not None:
            self.profile.step()
