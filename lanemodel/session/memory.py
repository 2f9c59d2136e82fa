"""Will a world size fit in memory? The session asks before each launch, from what its launches measured.

A memory cgroup (a container's or a CI runner's limit) holds a library's pages once for all the processes
that map them, and every rank's own memory once per rank. So N ranks need about N x (a rank's peak less its
shared pages) + the shared pages, measured by every launch so far (warm-ups and smaller world sizes
included; a rank's peak at a smaller world size, with its larger per-rank batch, is the larger one).
A world size whose need, with MARGIN, exceeds what is available is not launched: the out-of-memory killer
would take a rank, or the session itself, and nothing would be learnt.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lanemodel.engine.cgroup import Memory
from lanemodel.records import Launch

GIB = 2**30
MARGIN = 0.10       # headroom over the prediction, which was 4-9 % above the real peak here (README)
# A rank of the lightest preset before any launch measured one (torch and torchvision imported, the model
# built, one step): what refuses a sweep that cannot fit even once.
PRIOR_RANK_BYTES = 0.5 * GIB
PRIOR_SHARED_BYTES = 0.25 * GIB


@dataclass
class MemoryPlan:
    """The ranks' memory measured so far, and the verdict for a world size not yet launched."""

    available: Callable[[], Memory]          # what the machine has now (``cgroup.usable_memory``)
    own: float = 0.0                         # bytes a rank holds beyond the shared pages (largest seen)
    shared: float = 0.0                      # bytes of shared pages a rank maps (largest seen)
    measured: list[int] = field(default_factory=list)   # world sizes of the launches measured

    def observe(self, launch: Launch) -> None:
        """A launch's ranks' peaks (their metas' max_rss_mb and shared_rss_mb)."""
        metas = [meta for meta in launch.rank_metas if meta.get("max_rss_mb")]
        for meta in metas:
            shared = (meta.get("shared_rss_mb") or 0.0) * 2**20
            self.shared = max(self.shared, shared)
            self.own = max(self.own, meta["max_rss_mb"] * 2**20 - shared)
        if metas:
            self.measured.append(len(metas))

    def need(self, world_size: int) -> float:
        """Bytes ``world_size`` ranks are expected to hold at their peak, margin included."""
        own, shared = (self.own, self.shared) if self.measured else (PRIOR_RANK_BYTES, PRIOR_SHARED_BYTES)
        return (world_size * own + shared) * (1 + MARGIN)

    def refusal(self, world_size: int) -> str:
        """Why ``world_size`` is not launched ("" when it fits)."""
        memory, need = self.available(), self.need(world_size)
        if need <= memory.available:
            return ""
        basis = ("measured: up to {:.2f} GiB per rank and {:.2f} GiB shared, at world size {}".format(
            self.own / GIB, self.shared / GIB, ", ".join(map(str, sorted(set(self.measured)))))
            if self.measured else "before any launch, from the lightest rank's least")
        return (f"needs about {need / GIB:.1f} GiB, {memory.available / GIB:.1f} GiB available ({memory.source}; "
                f"need {basis}, +{MARGIN:.0%} margin)")
