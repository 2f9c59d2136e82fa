"""The lever study's input: ``--levers "comm_hook=bf16,powersgd:1;bucket_cap_mb=1,100;accumulate=2"``.

Each value is one setting changed from the default configuration, all else equal; every value is checked
before any launch, against every world size of the session (an accumulation a per-rank batch cannot split,
a hook dtype gloo here lacks), so that a study never stops half-way on a value that could not run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from lanemodel.settings import SettingsError, check_policy
from lanemodel.training.config import TrainConfig, parse_comm_hook

DEFAULT = "default"
TRAIN_LEVERS = ("comm_hook", "accumulate", "bucket_cap_mb", "static_graph", "gradient_as_bucket_view")
LEVERS = (*TRAIN_LEVERS, "threads")     # threads: the thread policy of the launch (naive, tuned, N per rank)
TRUE, FALSE = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


@dataclass(frozen=True)
class LeverValue:
    """One changed setting: ``lever`` set to ``value`` (``text`` as given)."""

    lever: str
    text: str
    value: Any

    @property
    def label(self) -> str:
        return f"{self.lever}={self.text}"

    def train_overrides(self) -> dict[str, Any]:
        return {} if self.lever == "threads" else {self.lever: self.value}

    def policy(self, default: str) -> str:
        return self.value if self.lever == "threads" else default


@dataclass(frozen=True)
class Combination:
    """Several lever values at once (the recommended configuration); empty: the default configuration."""

    values: tuple[LeverValue, ...] = ()

    @property
    def label(self) -> str:
        return "; ".join(value.label for value in self.values) or DEFAULT

    def train_overrides(self) -> dict[str, Any]:
        return {key: item for value in self.values for key, item in value.train_overrides().items()}

    def policy(self, default: str) -> str:
        for value in self.values:
            default = value.policy(default)
        return default


def _parse_value(flag: str, lever: str, text: str) -> Any:
    """One value of one lever, or a SettingsError naming the flag, the lever and what is wrong."""
    where = f"{flag}: {lever}={text}"
    try:
        if lever == "comm_hook":
            parse_comm_hook(text)
            return text
        if lever == "accumulate":
            value = int(text)
            if value < 1:
                raise ValueError("accumulate must be a whole number >= 1 (micro-batches per step)")
            return value
        if lever == "bucket_cap_mb":
            value = float(text)
            if not value > 0:
                raise ValueError("the bucket size must be > 0 MB")
            return value
        if lever == "threads":
            return check_policy(text)
        if text.lower() in TRUE + FALSE:
            return text.lower() in TRUE
        raise ValueError(f"{lever} is on or off: give one of {', '.join(TRUE + FALSE)}")
    except ValueError as exc:
        reason = str(exc) if "literal" not in str(exc) and "convert" not in str(exc) else "not a number"
        raise SettingsError(f"{where}: {reason}") from None


def parse_levers(text: str, flag: str = "--levers") -> tuple[LeverValue, ...]:
    """``lever=value,value;lever=value`` -> the values, in the order given; duplicates and unknown levers refused."""
    found: list[LeverValue] = []
    levers_seen: set[str] = set()
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        lever, sep, values = (s.strip() for s in part.partition("="))
        if not sep or not values:
            raise SettingsError(f"{flag}: {part!r} is not lever=value[,value]; e.g. comm_hook=bf16,powersgd:1")
        if lever not in LEVERS:
            raise SettingsError(f"{flag}: unknown lever {lever!r}; choose from {', '.join(LEVERS)}")
        if lever in levers_seen:
            raise SettingsError(f"{flag}: lever {lever} is given twice; list its values once, comma-separated")
        levers_seen.add(lever)
        texts = [v.strip() for v in values.split(",") if v.strip()]
        if len(set(texts)) != len(texts):
            raise SettingsError(f"{flag}: {lever} lists a value twice ({values})")
        found += [LeverValue(lever, t, _parse_value(flag, lever, t)) for t in texts]
    if not found:
        raise SettingsError(f"{flag} is empty; give e.g. comm_hook=bf16;accumulate=2")
    return tuple(found)


def check_runnable(values: tuple[LeverValue, ...], base: TrainConfig, world_sizes: tuple[int, ...],
                   flag: str = "--levers") -> None:
    """Every value as a whole TrainConfig at every world size (its own checks), and every hook gloo must run:
    a SettingsError naming the value and the world size, before any launch."""
    from lanemodel.engine.hookcheck import check_comm_hook

    for value in values:
        try:
            cfg = replace(base, **value.train_overrides())
            for ws in world_sizes:
                cfg.micro_batch_size(ws)
            if value.lever == "comm_hook":
                check_comm_hook(value.value)
        except ValueError as exc:
            raise SettingsError(f"{flag}: {value.label}: {exc}") from None



def predicted_bytes(value: LeverValue, shapes: list[tuple[int, ...]], element_bytes: int = 4) -> int:
    """Bytes one rank's hook sends per step with ``value``, from the gradient's shapes: every lever but the
    hook leaves the fp32 gradient's bytes as they are. fp16/bf16 halve every element; PowerSGD sends, per
    tensor it compresses (viewed as n x m, compressed when (n + m) r < n m, as this project sets its rate),
    P (n x r) and Q (m x r), and every other tensor whole (torch's powerSGD_hook)."""
    whole = sum(math.prod(shape) for shape in shapes) * element_bytes
    if value.lever != "comm_hook" or value.value == "none":
        return whole
    kind, rank = parse_comm_hook(value.value)
    if kind in ("fp16", "bf16"):
        return whole // 2
    sent = 0
    for shape in shapes:
        n, m = (shape[0], math.prod(shape) // shape[0]) if len(shape) > 1 else (0, 0)
        r = min(rank, n, m)
        sent += (n + m) * r if len(shape) > 1 and (n + m) * r < n * m else math.prod(shape)
    return sent * element_bytes


def gradient_shapes(cfg: TrainConfig) -> list[tuple[int, ...]]:
    """The shapes of the model's trainable parameters: what DDP all-reduces."""
    from lanemodel.training.train import build_workload

    model = build_workload(cfg).model()
    return [tuple(p.shape) for p in model.parameters() if p.requires_grad]
