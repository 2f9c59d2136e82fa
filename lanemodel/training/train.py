"""One rank's training loop: the same code runs alone (no DDP) or as one DDP rank over gloo."""
from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Protocol

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from lanemodel.records import StepRecord
from lanemodel.training import contract, cpucounters
from lanemodel.training.commhook import CommStep, CommTimer, register_hook
from lanemodel.training.config import TrainConfig, parse_comm_hook
from lanemodel.training.contract import Workload, split_batch
from lanemodel.training.extrawork import burn_cpu
from lanemodel.training.profiling import StepTracer


class RecordSink(Protocol):
    """Where a rank streams its records as it goes (the engine's JSON-lines recorder)."""

    def write(self, record: StepRecord) -> None: ...


@dataclass(frozen=True)
class RankContext:
    rank: int = 0
    world_size: int = 1
    distributed: bool = False   # wrap in DDP (a world of one still all-reduces, for like-for-like timing)


def warmup_cosine(warmup_iters: int, total_steps: int):
    """LR factor: linear warm-up, then cosine decay to zero over the remaining steps."""
    def factor(step: int) -> float:
        if step < warmup_iters:
            return (step + 1) / warmup_iters
        progress = (step - warmup_iters) / max(1, total_steps - warmup_iters)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return factor


def build_workload(cfg: TrainConfig) -> Workload:
    return contract.build(cfg.workload, cfg.workload_dir, cfg.workload_options())


def prepare_data(cfg: TrainConfig) -> None:
    """The workload's data set made once in this process before the first launch: what it does once (the lane
    detector decodes its frames into a cache) is then not inside any timed launch."""
    _prepared(cfg.workload, cfg.workload_dir, json.dumps(cfg.workload_options(), sort_keys=True))


@functools.cache
def _prepared(spec: str, directory: str, options: str) -> None:
    contract.build(spec, directory, json.loads(options)).dataset()


def build_model(cfg: TrainConfig, ctx: RankContext, workload: Workload | None = None
                ) -> tuple[torch.nn.Module, CommTimer | None]:
    """The workload's model, seeded alike on every rank, in DDP with the configured buckets and hook."""
    workload = workload or build_workload(cfg)
    torch.manual_seed(cfg.seed)
    model = workload.model()
    if not ctx.distributed:
        return model, None
    model = DistributedDataParallel(model, bucket_cap_mb=cfg.bucket_cap_mb, static_graph=cfg.static_graph,
                                    gradient_as_bucket_view=cfg.gradient_as_bucket_view)
    timer = None
    kind, rank = parse_comm_hook(cfg.comm_hook)
    if cfg.instrument_comm or cfg.comm_delay_ms or kind != "none":
        # The injected delay stands for a slower network, so a world of one (no peer) is not delayed.
        delay_s = cfg.comm_delay_ms / 1000.0 if ctx.world_size > 1 else 0.0
        timer = CommTimer(world_size=ctx.world_size, delay_s=delay_s)
        register_hook(model, timer, kind, rank, cfg.powersgd_start_iter, cfg.powersgd_warm_start)
    return model, timer


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, workload: Workload) -> torch.optim.Optimizer:
    """The workload's own optimizer when it has one; else Adam as UFLD trains it (``adam_impl``: per-tensor loop,
    foreach, or the fused CPU kernel), or plain SGD."""
    if callable(getattr(workload, "optimizer", None)):
        return workload.optimizer(model.parameters())
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    impl = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[cfg.adam_impl]
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **impl)


def build_loader(cfg: TrainConfig, ctx: RankContext, workload: Workload) -> tuple[DataLoader, DistributedSampler]:
    dataset = workload.dataset()
    batch = cfg.rank_batch_size(ctx.world_size)
    cfg.micro_batch_size(ctx.world_size)       # accumulate must split the rank's batch evenly
    if len(dataset) < batch * ctx.world_size:
        raise ValueError(f"the data set of {cfg.workload} has {len(dataset)} frames, fewer than one global batch "
                         f"of {batch * ctx.world_size}")
    sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                 seed=cfg.seed, drop_last=True)
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=True,
                        num_workers=cfg.data_workers, persistent_workers=cfg.data_workers > 0)
    return loader, sampler


def batches(loader: DataLoader, sampler: DistributedSampler):
    """Endless batches; the sampler reshuffles every epoch via set_epoch, as DDP needs."""
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def forward_backward(model: torch.nn.Module, workload: Workload, inputs, target,
                     accumulate: int) -> tuple[torch.Tensor, float]:
    """The rank's batch through forward and backward: (its mean loss, seconds in forward and loss). With
    ``accumulate`` K, as K micro-batches whose gradients add up locally (DDP's no_sync) until the last one's
    backward all-reduces them: the same gradient as one batch, one all-reduce, K smaller forwards and backwards."""
    total, forward_s = torch.zeros(()), 0.0
    micro_batches = zip(split_batch(inputs, accumulate), split_batch(target, accumulate))
    for index, (micro_inputs, micro_target) in enumerate(micro_batches):
        last = index == accumulate - 1
        with nullcontext() if last or not isinstance(model, DistributedDataParallel) else model.no_sync():
            started = time.perf_counter()
            loss = workload.loss(model(micro_inputs), micro_target) / accumulate
            forward_s += time.perf_counter() - started
            loss.backward()
        total += loss.detach()
    return total, forward_s


def comm_fields(comm: CommStep | None) -> dict[str, float | int | None]:
    """The step record's all-reduce fields; None where the all-reduce was not timed (no DDP, --no-instrument)."""
    if comm is None:
        return dict.fromkeys(("comm_time", "comm_exposed_time", "comm_buckets", "comm_busy_time", "comm_bytes"))
    return {"comm_time": comm.total, "comm_exposed_time": comm.exposed, "comm_buckets": comm.buckets,
            "comm_busy_time": comm.busy, "comm_bytes": comm.sent_bytes}


@dataclass
class TrainResult:
    records: list[StepRecord]
    model: torch.nn.Module      # the plain model, unwrapped from DDP


def train(cfg: TrainConfig, ctx: RankContext, recorder: RecordSink | None = None,
          before_step: Callable[[int], None] | None = None) -> TrainResult:
    """Run the configured steps, timing every phase; records are also streamed to ``recorder``."""
    workload = build_workload(cfg)
    model, timer = build_model(cfg, ctx, workload)
    loader, sampler = build_loader(cfg, ctx, workload)
    total_steps = len(loader) if cfg.one_epoch else cfg.steps
    optimizer = build_optimizer(model, cfg, workload)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.warmup_iters, total_steps))
    batch = cfg.rank_batch_size(ctx.world_size)
    model.train()
    records: list[StepRecord] = []
    stream = batches(loader, sampler)
    first_start = None
    with StepTracer(cfg.profile_steps, cfg.profile_dir, ctx.rank) as tracer:
        for step in range(total_steps):
            if before_step:
                before_step(step)
            start_wall, t0, cpu_before = time.time(), time.perf_counter(), cpucounters.sample()
            first_start = t0 if first_start is None else first_start
            inputs, target = next(stream)
            t1 = time.perf_counter()
            loss, forward_s = forward_backward(model, workload, inputs, target, cfg.accumulate)
            t3 = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            optimizer.zero_grad(set_to_none=not cfg.gradient_as_bucket_view)
            scheduler.step()
            t4 = optimized = time.perf_counter()
            comm = timer.take() if timer else None
            if cfg.step_slowdown_pct:
                # Stands for slower code: extra CPU work that no timer attributes ("other"), a share of the
                # CPU time this step's own work took (extrawork says why CPU time, not wall time).
                burn_cpu((time.process_time() - cpu_before.cpu_time) * cfg.step_slowdown_pct / 100.0)
                t4 = time.perf_counter()
            cpu = cpucounters.step_fields(cpu_before, cpucounters.sample())
            record = StepRecord(
                step=step, loss=loss.item(), batch_size=batch, global_batch_size=batch * ctx.world_size,
                lr=lr, step_time=t4 - t0, total_elapsed=t4 - first_start, start_time=start_wall,
                end_time=start_wall + (t4 - t0), data_time=t1 - t0, forward_time=forward_s,
                backward_time=t3 - t1 - forward_s,
                optimizer_time=optimized - t3, rank=ctx.rank, world_size=ctx.world_size, **comm_fields(comm), **cpu)
            records.append(record)
            if recorder:
                recorder.write(record)
            tracer.step()
    return TrainResult(records, model.module if isinstance(model, DistributedDataParallel) else model)
