"""The fitted cost model of a DDP step: a serial part, a parallel part that speeds up with the cores
actually in use, and a ring all-reduce costed with the alpha-beta (latency-bandwidth) model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TypedDict

import numpy as np


def ring_allreduce_seconds(
    world_size: int, nbytes: float, alpha: float, beta_bytes_per_s: float
) -> float:
    """Ring all-reduce time: 2(p-1) latency hops plus 2(p-1)/p of the buffer over the link."""
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size}")
    if world_size == 1:
        return 0.0
    hops = 2 * (world_size - 1)
    return hops * alpha + hops / world_size * nbytes / beta_bytes_per_s


def _nonnegative_least_squares(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Exact non-negative least squares for a handful of columns.

    The optimum equals the unconstrained fit on its own support, so trying
    every column subset and keeping the best feasible fit is exact; with two
    columns this is the 'clamp a negative coefficient, refit the other' rule.
    """
    columns = design.shape[1]
    best = np.zeros(columns)
    best_residual = float(np.sum(target**2))
    for size in range(1, columns + 1):
        for support in combinations(range(columns), size):
            chosen = list(support)
            coefficients, *_ = np.linalg.lstsq(design[:, chosen], target, rcond=None)
            if np.any(coefficients < 0.0):
                continue
            residual = float(np.sum((design[:, chosen] @ coefficients - target) ** 2))
            if residual < best_residual:
                best = np.zeros(columns)
                best[chosen] = coefficients
                best_residual = residual
    return best


def fit_alpha_beta(
    world_sizes: Sequence[int], comm_seconds: Sequence[float], nbytes: float
) -> tuple[float, float]:
    """Fit (alpha seconds, beta bytes/s) of the ring model to measured all-reduce times.

    Only p > 1 points are used (a single rank does not communicate). Both
    coefficients are kept non-negative. With fewer than two distinct p > 1 the
    latency and bandwidth terms cannot be separated, so all time goes to
    bandwidth (alpha = 0). A zero bandwidth term gives beta = inf.
    """
    if nbytes <= 0.0:
        raise ValueError(f"nbytes must be positive, got {nbytes}")
    sizes = np.asarray(world_sizes, dtype=float)
    seconds = np.asarray(comm_seconds, dtype=float)
    if sizes.shape != seconds.shape:
        raise ValueError("world_sizes and comm_seconds must have the same length")
    multi = sizes > 1
    if not np.any(multi):
        raise ValueError("fit_alpha_beta needs at least one point with world size > 1")
    sizes, seconds = sizes[multi], seconds[multi]
    hops = 2.0 * (sizes - 1.0)
    bandwidth_column = hops / sizes * nbytes
    if np.unique(sizes).size < 2:
        alpha = 0.0
        (inverse_beta,) = _nonnegative_least_squares(bandwidth_column[:, None], seconds)
    else:
        alpha, inverse_beta = _nonnegative_least_squares(
            np.column_stack([hops, bandwidth_column]), seconds
        )
    beta = 1.0 / inverse_beta if inverse_beta > 0.0 else float("inf")
    return float(alpha), float(beta)


def cores_in_use(world_size: int, cores: int, threads_per_rank: dict[int, int] | int) -> int:
    """Cores the ranks can keep busy: p * threads, capped at the machine's cores.

    Past the cap the run is oversubscribed and compute stops speeding up. A
    dict of threads per world size falls back to max(1, cores // p) for
    world sizes it does not list.
    """
    if isinstance(threads_per_rank, Mapping):
        threads = threads_per_rank.get(world_size, max(1, cores // world_size))
    else:
        threads = int(threads_per_rank)
    return min(world_size * threads, cores)


@dataclass(frozen=True)
class ScalingModel:
    """step time = serial + parallel / cores_in_use(p) + replicated * p / cores_in_use(p) + ring all-reduce.

    The parallel work is split across the cores in use (a fixed global batch: strong scaling). The
    replicated work is what every rank repeats in full, such as the optimizer step over all
    parameters: p copies of it share the cores in use, so it grows once ranks outnumber cores.
    """

    serial: float
    parallel: float
    alpha: float
    beta: float
    nbytes: float
    cores: int
    threads_per_rank: dict[int, int] | int
    replicated: float = 0.0

    def predict(self, world_size: int, beta: float | None = None) -> float:
        """Predicted step seconds; pass beta to ask what a different link bandwidth would give."""
        bandwidth = self.beta if beta is None else beta
        cores = cores_in_use(world_size, self.cores, self.threads_per_rank)
        compute = (self.parallel + self.replicated * world_size) / cores
        comm = ring_allreduce_seconds(world_size, self.nbytes, self.alpha, bandwidth)
        return self.serial + compute + comm


def fit_scaling_model(
    world_sizes: Sequence[int],
    step_seconds: Sequence[float],
    comm_seconds: Sequence[float],
    nbytes: float,
    cores: int,
    threads_per_rank: dict[int, int] | int,
) -> ScalingModel:
    """Fit a ScalingModel to measured step and all-reduce times.

    alpha and beta come from the all-reduce times (fit_alpha_beta). serial, parallel and replicated
    come from non-negative least squares of step time minus predicted all-reduce time against
    [1, 1/cores_in_use(p), p/cores_in_use(p)]. If every point uses the same number of cores, serial
    and parallel cannot be told apart: serial is set to 0 and that time goes to parallel
    (predictions at those core counts stay right; extrapolation to other core counts does not).
    """
    alpha, beta = fit_alpha_beta(world_sizes, comm_seconds, nbytes)
    steps = np.asarray(step_seconds, dtype=float)
    if steps.shape != (len(world_sizes),):
        raise ValueError("world_sizes and step_seconds must have the same length")
    compute = steps - np.array(
        [ring_allreduce_seconds(p, nbytes, alpha, beta) for p in world_sizes]
    )
    inverse_cores = np.array(
        [1.0 / cores_in_use(p, cores, threads_per_rank) for p in world_sizes]
    )
    replicated_column = np.asarray(world_sizes, dtype=float) * inverse_cores
    if np.unique(inverse_cores).size < 2:
        serial = 0.0
        parallel, replicated = _nonnegative_least_squares(
            np.column_stack([inverse_cores, replicated_column]), compute
        )
    else:
        serial, parallel, replicated = _nonnegative_least_squares(
            np.column_stack([np.ones_like(inverse_cores), inverse_cores, replicated_column]), compute
        )
    return ScalingModel(
        serial=float(serial),
        parallel=float(parallel),
        alpha=alpha,
        beta=beta,
        nbytes=nbytes,
        cores=cores,
        threads_per_rank=threads_per_rank,
        replicated=float(replicated),
    )


class HoldoutResult(TypedDict):
    world_size: int
    predicted: float
    measured: float
    relative_error: float


def holdout_error(
    world_sizes: Sequence[int],
    step_seconds: Sequence[float],
    comm_seconds: Sequence[float],
    nbytes: float,
    cores: int,
    threads_per_rank: dict[int, int] | int,
    held_out: int,
) -> HoldoutResult:
    """Fit without one world size and predict it, to test the model's extrapolation.

    relative_error = (predicted - measured) / measured, so positive means the
    model expects a slower step than was measured. Repeated measurements of
    the held-out world size are averaged.
    """
    sizes = np.asarray(world_sizes)
    held = sizes == held_out
    if not np.any(held):
        raise ValueError(f"held_out world size {held_out} is not among world_sizes")
    kept = ~held
    steps = np.asarray(step_seconds, dtype=float)
    model = fit_scaling_model(
        sizes[kept].tolist(),
        steps[kept],
        np.asarray(comm_seconds, dtype=float)[kept],
        nbytes,
        cores,
        threads_per_rank,
    )
    predicted = model.predict(held_out)
    measured = float(np.mean(steps[held]))
    return HoldoutResult(
        world_size=held_out,
        predicted=predicted,
        measured=measured,
        relative_error=(predicted - measured) / measured,
    )


def best_world_size(model: ScalingModel, candidates: Sequence[int]) -> int:
    """Candidate with the lowest predicted step time; ties go to the smaller world size."""
    if not candidates:
        raise ValueError("candidates is empty")
    return min(sorted(candidates), key=model.predict)
