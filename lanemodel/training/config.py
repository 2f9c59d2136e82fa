"""All knobs of one training run in one object, serialisable so a launcher can hand it to its ranks."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from lanemodel.settings import LANE_WORKLOAD

SCALING_MODES = ("strong", "weak")
ADAM_IMPLEMENTATIONS = ("loop", "foreach", "fused")
OPTIMIZERS = ("adam", "sgd")


def knob(default, help_text: str):
    """A field that `python -m lanemodel train` and `sweep` offer as an option, with its help text."""
    return field(default=default, metadata={"help": help_text})


COMM_HOOKS = ("none", "fp16", "bf16", "powersgd")
HALF_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}     # the compressing hooks and the torch dtype they send


def parse_comm_hook(text: str) -> tuple[str, int]:
    """'powersgd:2' -> ('powersgd', 2); 'bf16' -> ('bf16', 0). A ValueError names what is wrong."""
    kind, _, rank = text.partition(":")
    if kind not in COMM_HOOKS:
        raise ValueError(f"comm_hook {text!r}: unknown; choose one of none, fp16, bf16, powersgd:RANK")
    if kind != "powersgd":
        if rank:
            raise ValueError(f"comm_hook {text!r}: only powersgd takes a rank")
        return kind, 0
    if not rank.isdigit() or int(rank) < 1:
        raise ValueError(f"comm_hook {text!r}: PowerSGD needs a whole rank >= 1, e.g. powersgd:1")
    return kind, int(rank)


@dataclass
class TrainConfig:
    """One training run. Strong scaling splits ``global_batch`` across ranks; weak gives each rank ``rank_batch``."""

    data_dir: str                      # the lane detector's TuSimple-format data set
    preset: str = "tiny"
    workload: str = LANE_WORKLOAD      # MODULE:ATTR of the contract (``training.contract``)
    workload_dir: str = ""             # imported from this directory first (where the session runs, or REF's tree)
    frames: str = "cache"              # the lane detector's frames: cache (decoded once) or jpeg (at every step)
    steps: int = 20
    scaling: str = "strong"
    global_batch: int = 8
    rank_batch: int = 4
    one_epoch: bool = knob(False, "one pass over the data instead of --steps")
    use_aux: bool = knob(False, "train the auxiliary segmentation branch")
    lr: float = knob(4e-4, "learning rate (UFLD's TuSimple setting: Adam, cosine decay, linear warm-up)")
    weight_decay: float = knob(1e-4, "weight decay")
    optimizer: str = knob("adam", "adam (UFLD's choice) or sgd (plain SGD, whose step scales with the gradient: "
                                  "it tells an averaged gradient from a summed one)")
    adam_impl: str = knob("fused", "Adam implementation: loop, foreach or fused (the optimizer step is "
                                   "repeated on every rank, so its speed matters)")
    warmup_iters: int = knob(5, "steps of linear learning-rate warm-up")
    seed: int = knob(0, "seed of the model initialisation and the data order")
    data_workers: int = knob(0, "DataLoader worker processes per rank")
    bucket_cap_mb: float = knob(25.0, "DDP gradient bucket size (MB)")
    gradient_as_bucket_view: bool = knob(True, "gradients as views into DDP's buckets")
    static_graph: bool = knob(False, "DDP static_graph")
    channels_last: bool = knob(False, "channels-last memory format (3 % faster on small at 2 ranks, "
                                      "12-15 % slower on tiny)")
    instrument_comm: bool = knob(True, "time every bucket's all-reduce with a communication hook")
    comm_hook: str = knob("none", "gradient communication: none (fp32 all-reduce), fp16 or bf16 (buckets "
                                  "all-reduced in half precision), powersgd:RANK (low-rank compression, Vogels "
                                  "et al. 2019, with error feedback)")
    powersgd_start_iter: int = knob(2, "with powersgd: plain all-reduce before this step (at least 2)")
    powersgd_warm_start: bool = knob(True, "with powersgd: reuse the last step's factors as the next start")
    accumulate: int = knob(1, "micro-batches per optimizer step (the rank's batch split K ways; all-reduce "
                              "only after the last, under DDP's no_sync): the global batch is unchanged")
    comm_delay_ms: float = 0.0       # sleep added to every all-reduce: a known slowdown for testing the gate
    step_slowdown_pct: float = 0.0   # extra CPU work at every step's end, this % of its own: a known slowdown
    collective_timeout_s: float = knob(120.0, "seconds a collective may wait before gloo gives up")
    profile_steps: int = knob(0, "record a torch.profiler trace of this many steps (after 2 unrecorded ones) "
                                 "into --profile-dir, one Chrome/Perfetto file per rank")
    profile_dir: str = knob("", "where the profiler traces go (trace_rank<R>.json)")

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.adam_impl not in ADAM_IMPLEMENTATIONS:
            raise ValueError(f"adam_impl must be one of {ADAM_IMPLEMENTATIONS}, got {self.adam_impl!r}")
        if self.scaling not in SCALING_MODES:
            raise ValueError(f"scaling must be one of {SCALING_MODES}, got {self.scaling!r}")
        for name in ("global_batch", "rank_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.one_epoch and self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.profile_steps < 0 or (self.profile_steps and not self.profile_dir):
            raise ValueError(f"profile_steps must be >= 0 and needs profile_dir, got {self.profile_steps} "
                             f"and {self.profile_dir!r}")
        if self.collective_timeout_s <= 0:
            raise ValueError(f"collective timeout must be > 0 s, got {self.collective_timeout_s}")
        if self.comm_delay_ms < 0:
            raise ValueError(f"comm delay must be >= 0 ms, got {self.comm_delay_ms}")
        if self.step_slowdown_pct < 0:
            raise ValueError(f"step slowdown must be >= 0 %, got {self.step_slowdown_pct}")
        parse_comm_hook(self.comm_hook)
        if self.powersgd_start_iter < 2:
            raise ValueError(f"powersgd_start_iter must be at least 2 (PowerSGD starts after DDP's first two "
                             f"steps), got {self.powersgd_start_iter}")
        if self.accumulate < 1:
            raise ValueError(f"accumulate must be at least 1 micro-batch per step, got {self.accumulate}")

    def workload_options(self) -> dict:
        """What the workload's class is called with: the lane detector's preset and data; a workload of one's
        own is called without arguments."""
        if self.workload != LANE_WORKLOAD:
            return {}
        return {"data_dir": self.data_dir, "preset": self.preset, "use_aux": self.use_aux,
                "channels_last": self.channels_last, "frames": self.frames}

    def micro_batch_size(self, world_size: int) -> int:
        """The batch of one forward/backward: the rank's batch split ``accumulate`` ways, evenly or refused."""
        batch = self.rank_batch_size(world_size)
        if batch % self.accumulate:
            raise ValueError(f"accumulate {self.accumulate} does not divide the per-rank batch {batch} at world "
                             f"size {world_size}")
        return batch // self.accumulate

    def rank_batch_size(self, world_size: int) -> int:
        """This rank's batch; strong scaling refuses a global batch that does not split evenly."""
        if self.scaling == "weak":
            return self.rank_batch
        if self.global_batch % world_size:
            raise ValueError(f"global batch {self.global_batch} does not divide evenly across "
                             f"world size {world_size}")
        return self.global_batch // world_size

    def global_batch_size(self, world_size: int) -> int:
        return self.rank_batch_size(world_size) * world_size

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training config keys: {sorted(unknown)}")
        return cls(**data)
