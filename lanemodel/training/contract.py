"""The workload contract: what the suite needs of a model to measure its DDP training.

``--workload MODULE:ATTR`` names a class or zero-argument factory whose object has ``name`` (str), ``model()``
(an ``nn.Module``, built on every rank after the suite seeds torch), ``dataset()`` (a map-style data set of
``(inputs, target)`` items, batched by the default collate), ``loss(output, target)`` (a scalar tensor, the
batch mean) and optionally ``optimizer(params)``. The suite keeps the sampler, the batch split, the data
workers, DDP and every timer, so the measurement means the same for any workload.

``inspect`` checks a workload in this process before any launch (one rank, one batch, one forward and
backward) and says what is wrong in words that name the input.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import sys
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import torch

REQUIRED_METHODS = ("model", "dataset", "loss")


class WorkloadError(ValueError):
    """A workload that cannot be measured; the message names MODULE:ATTR and what is wrong."""


class Workload(Protocol):
    name: str

    def model(self) -> torch.nn.Module: ...

    def dataset(self) -> torch.utils.data.Dataset: ...

    def loss(self, output: Any, target: Any) -> torch.Tensor: ...


@dataclass(frozen=True)
class WorkloadInfo:
    """What a run records of its workload: two runs with different ones are never compared."""

    spec: str                 # MODULE:ATTR
    name: str
    parameters: int
    shapes_sha256: str        # of every parameter's shape, in order: a wider or deeper model differs
    items: int                # len(dataset())
    data: str                 # the workload's own account of its data (``describe_data``), or ""

    def as_json(self) -> dict:
        return dict(self.__dict__)


def split_spec(spec: str) -> tuple[str, str]:
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise WorkloadError(f"--workload {spec!r}: give MODULE:ATTR, e.g. mymodel:MyWorkload")
    return module, attr


@contextmanager
def importable_from(directory: str):
    """``directory`` first on the import path while the workload's module is imported (the directory pytest
    runs in, or REF's worktree for REF's ranks)."""
    if not directory:
        yield
        return
    sys.path.insert(0, directory)
    try:
        yield
    finally:
        if directory in sys.path:
            sys.path.remove(directory)


def load_factory(spec: str, directory: str = ""):
    module_name, attr = split_spec(spec)
    with importable_from(directory):
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            where = f" (looked in {directory} first)" if directory else ""
            raise WorkloadError(f"--workload {spec}: module {module_name!r} does not import{where}: "
                                f"{type(exc).__name__}: {exc}") from exc
    try:
        return functools.reduce(getattr, attr.split("."), module)
    except AttributeError:
        raise WorkloadError(f"--workload {spec}: module {module_name!r} has no attribute {attr!r}") from None


def build(spec: str, directory: str = "", options: Mapping[str, Any] | None = None) -> Workload:
    """The workload object: ATTR called with ``options`` (the lane detector's preset and data; none for a
    workload of one's own), its contract checked."""
    factory = load_factory(spec, directory)
    if not callable(factory):
        raise WorkloadError(f"--workload {spec}: {type(factory).__name__} object is not a class or factory")
    try:
        workload = factory(**(options or {}))
    except Exception as exc:
        raise WorkloadError(f"--workload {spec}: calling it raised {type(exc).__name__}: {exc}") from exc
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(workload, m, None))]
    if missing:
        raise WorkloadError(f"--workload {spec}: the object lacks {', '.join(f'{m}()' for m in missing)} of the "
                            f"contract (name, model(), dataset(), loss(output, target), optional optimizer(params))")
    if not isinstance(getattr(workload, "name", None), str) or not workload.name.strip():
        raise WorkloadError(f"--workload {spec}: the object has no name (a non-empty str attribute)")
    return workload


def call(spec: str, what: str, function, *args):
    """One call into the workload; its exception becomes a WorkloadError naming the method."""
    try:
        return function(*args)
    except Exception as exc:
        raise WorkloadError(f"--workload {spec}: {what} raised {type(exc).__name__}: {exc}") from exc


def shapes_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, parameter in model.named_parameters():
        digest.update(f"{name}{tuple(parameter.shape)};".encode())
    return digest.hexdigest()[:16]


def split_batch(batch: Any, parts: int) -> list[Any]:
    """A collated batch (tensors in tuples, lists or dicts, as the default collate makes them) cut into
    ``parts`` micro-batches along the first dimension."""
    if parts == 1:
        return [batch]
    if isinstance(batch, torch.Tensor):
        return list(batch.chunk(parts)) if batch.dim() else [batch] * parts
    if isinstance(batch, Mapping):
        cut = {key: split_batch(value, parts) for key, value in batch.items()}
        return [{key: cut[key][i] for key in batch} for i in range(parts)]
    if isinstance(batch, (tuple, list)):
        cut = [split_batch(value, parts) for value in batch]
        return [type(batch)(column[i] for column in cut) for i in range(parts)]
    return [batch] * parts


def inspect(spec: str, directory: str = "", options: Mapping[str, Any] | None = None, global_batch: int = 1,
            seed: int = 0) -> WorkloadInfo:
    """The workload checked as a rank will use it, in this process: built, its model and data set made, one
    batch of ``min(global_batch, 2)`` items through forward, loss and backward. A WorkloadError names the first
    thing that is wrong."""
    workload = build(spec, directory, options)
    torch.manual_seed(seed)
    model = call(spec, "model()", workload.model)
    if not isinstance(model, torch.nn.Module):
        raise WorkloadError(f"--workload {spec}: model() returned {type(model).__name__}, not a torch.nn.Module")
    dataset = call(spec, "dataset()", workload.dataset)
    try:
        items = len(dataset)
    except TypeError:
        raise WorkloadError(f"--workload {spec}: dataset() returned {type(dataset).__name__}, which has no len(): "
                            f"the suite needs a map-style data set") from None
    if items < global_batch:
        raise WorkloadError(f"--workload {spec}: its data set has {items} items, fewer than one global batch of "
                            f"{global_batch}")
    batch = call(spec, "the default collate of its first items", torch.utils.data.default_collate,
                 [dataset[i] for i in range(min(global_batch, 2))])
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise WorkloadError(f"--workload {spec}: a data set item must be (inputs, target), got "
                            f"{type(batch).__name__} of {len(batch) if hasattr(batch, '__len__') else '?'}")
    model.train()
    output = call(spec, "model(inputs)", model, batch[0])
    loss = call(spec, "loss(output, target)", workload.loss, output, batch[1])
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise WorkloadError(f"--workload {spec}: loss(output, target) must be a scalar tensor (the batch mean), "
                            f"got {shape}")
    if not loss.requires_grad:
        raise WorkloadError(f"--workload {spec}: loss(output, target) has no gradient (it does not depend on the "
                            f"model's parameters)")
    call(spec, "backward() of the loss", loss.backward)
    return WorkloadInfo(spec=spec, name=workload.name, parameters=sum(p.numel() for p in model.parameters()),
                        shapes_sha256=shapes_digest(model), items=items,
                        data=str(getattr(workload, "describe_data", lambda: "")()))

