"""A DDP communication hook that all-reduces each gradient bucket and times it.

DDP launches a bucket's all-reduce as soon as its gradients are ready, so all-reduce overlaps the
rest of backward. The hook keeps each bucket's (start, end, bytes); ``exposed`` is the part after
the last bucket was launched, which backward had to wait for.
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
        """(total all-reduce seconds, exposed seconds, bucket count, span seconds) since the last call."""
        spans, self.spans = self.spans, []
        if not spans:
            return 0.0, 0.0, 0, 0.0
        total = sum(end - start for start, end, _ in spans)
        last_end = max(end for _, end, _ in spans)
        exposed = last_end - max(start for start, _, _ in spans)
        return total, max(exposed, 0.0), len(spans), last_end - min(start for start, _, _ in spans)


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
