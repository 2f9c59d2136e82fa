"""DDP communication hooks that all-reduce each gradient bucket and time it: plain (fp32), compressed to
fp16/bf16, or PowerSGD (``--comm-hook``); every one records the bytes it actually sent.

DDP launches a bucket's all-reduce as soon as its gradients are ready, so all-reduce overlaps the
rest of backward. The hook keeps each bucket's (start, end, bytes); ``exposed`` is the part after
the last bucket was launched, which backward had to wait for; ``busy`` is the time at least one bucket's
all-reduce was in flight (the union of their intervals: the buckets queue behind each other, so their
durations overlap and their sum overstates it).
"""

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.distributed as dist

from lanemodel.training.config import HALF_DTYPES


class CommStep(NamedTuple):
    """One step's all-reduce: seconds in all buckets, exposed and busy seconds, buckets, bytes sent."""

    total: float
    exposed: float
    buckets: int
    busy: float
    sent_bytes: int


@dataclass
class CommTimer:
    world_size: int
    delay_s: float = 0.0
    group: object = None
    spans: list = field(default_factory=list)
    powersgd: object = None     # the PowerSGDState, with --comm-hook powersgd:RANK

    def take(self) -> CommStep:
        """The all-reduce since the last call."""
        spans, self.spans = self.spans, []
        if not spans:
            return CommStep(0.0, 0.0, 0, 0.0, 0)
        total = sum(end - start for start, end, _ in spans)
        exposed = max(end for _, end, _ in spans) - max(start for start, _, _ in spans)
        return CommStep(total, max(exposed, 0.0), len(spans), busy_seconds([(start, end) for start, end, _ in spans]),
                        sum(sent for _, _, sent in spans))


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


def _finish_span(state: CommTimer, start: float, sent_bytes: int) -> None:
    if state.delay_s:
        time.sleep(state.delay_s)
    state.spans.append((start, time.perf_counter(), sent_bytes))


def compressed_allreduce_hook(dtype: torch.dtype):
    """A hook that averages the bucket in ``dtype`` (half the bytes of fp32) and writes it back in fp32."""
    def hook(state: CommTimer, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
        buffer = bucket.buffer()
        start = time.perf_counter()
        compressed = buffer.to(dtype).div_(state.world_size)
        future = dist.all_reduce(compressed, group=state.group, async_op=True).get_future()

        def finish(fut: torch.futures.Future) -> torch.Tensor:
            _finish_span(state, start, compressed.numel() * compressed.element_size())
            buffer.copy_(fut.value()[0])
            return buffer

        return future.then(finish)
    return hook


def timed_powersgd_hook(state: CommTimer, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """torch's PowerSGD hook, timed, one bucket at a time; the bytes are those of the factors and the
    uncompressed tensors it sent (PowerSGD's own count of elements after compression), or the whole bucket
    before it starts.

    PowerSGD issues its second and third all-reduce (P, then Q) from callbacks, which gloo runs on its own
    threads: with several buckets in flight the ranks issued them in different orders and hung or aborted
    ("Received data size doesn't match expected size"; 4 ranks, 3 buckets). Waiting for each bucket here, in
    backward's thread, keeps one order on every rank, at the price of PowerSGD's overlap with backward.
    """
    from torch.distributed.algorithms.ddp_comm_hooks.powerSGD_hook import powerSGD_hook

    powersgd = state.powersgd
    before = powersgd.total_numel_after_compression
    compressing = powersgd.iter >= powersgd.start_powerSGD_iter
    start = time.perf_counter()
    averaged = powerSGD_hook(powersgd, bucket).wait()
    sent = bucket.buffer().element_size() * (powersgd.total_numel_after_compression - before if compressing
                                             else bucket.buffer().numel())
    _finish_span(state, start, sent)
    done: torch.futures.Future[torch.Tensor] = torch.futures.Future()
    done.set_result(averaged)
    return done


def register_hook(model, timer: CommTimer, comm_hook: str, powersgd_rank: int, start_iter: int,
                  warm_start: bool) -> None:
    """The timed hook ``comm_hook`` names (config.parse_comm_hook), on a DDP model."""
    if comm_hook == "powersgd":
        from torch.distributed.algorithms.ddp_comm_hooks.powerSGD_hook import PowerSGDState

        timer.powersgd = PowerSGDState(process_group=timer.group, matrix_approximation_rank=powersgd_rank,
                                       start_powerSGD_iter=start_iter, warm_start=warm_start,
                                       min_compression_rate=1)
        model.register_comm_hook(timer, timed_powersgd_hook)
    elif comm_hook in HALF_DTYPES:
        model.register_comm_hook(timer, compressed_allreduce_hook(getattr(torch, HALF_DTYPES[comm_hook])))
    else:
        model.register_comm_hook(timer, timed_allreduce_hook)
