"""A DDP communication hook that all-reduces each gradient bucket and times it.

DDP launches a bucket's all-reduce as soon as its gradients are ready, so all-reduce overlaps the
rest of backward. The hook keeps each bucket's (start, end, bytes); ``exposed`` is the part after
the last bucket was launched, which backward had to wait for; ``busy`` is the time at least one bucket's
all-reduce was in flight (the union of their intervals: the buckets queue behind each other, so their
durations overlap and their sum overstates it).
"""

import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass
class CommTimer:
    world_size: int
    delay_s: float = 0.0
    group: object = None
    spans: list = field(default_factory=list)

    def take(self) -> tuple[float, float, int, float]:
        """(total all-reduce seconds, exposed seconds, bucket count, busy seconds) since the last call."""
        spans, self.spans = self.spans, []
        if not spans:
            return 0.0, 0.0, 0, 0.0
        total = sum(end - start for start, end, _ in spans)
        exposed = max(end for _, end, _ in spans) - max(start for start, _, _ in spans)
        return total, max(exposed, 0.0), len(spans), busy_seconds([(start, end) for start, end, _ in spans])


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of (start, end) intervals."""
    busy, reached = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reached:
            busy += end - max(start, reached)
            reached = end
    return busy


def timed_allreduce_hook(state: CommTimer, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """Average the bucket across ranks like DDP's default, recording when it started and finished."""
    buffer = bucket.buffer()
    start = time.perf_counter()
    buffer.div_(state.world_size)
    future = dist.all_reduce(buffer, group=state.group, async_op=True).get_future()

    def finish(fut: torch.futures.Future) -> torch.Tensor:
        if state.delay_s:
            time.sleep(state.delay_s)
        state.spans.append((start, time.perf_counter(), buffer.numel() * buffer.element_size()))
        return fut.value()[0]

    return future.then(finish)
