"""The original study's explanations of its curve, each held against this run's own measurements.

The study named a sweet spot and blamed the slowdown past it on communication, memory bandwidth, caches,
context switching, smaller batches, load imbalance and synchronization, measuring none of them. Each
claim here gets the numbers of this run that bear on it and a verdict: supported, refuted, or not
measurable here (with the reason). Thresholds are stated in each row's evidence.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lanemodel.analysis.curve import PolicyAnalysis
from lanemodel.analysis.partsmodel import median_of
from lanemodel.records import LaunchSeries, finished_kept_records

SUPPORTED, REFUTED, NOT_MEASURABLE = "supported", "refuted", "not measurable here"
MATERIAL_SHARE = 0.10        # a cause that takes at least this share of the step is material
BANDWIDTH_DROP = 0.20        # per-process triad bandwidth lost when every process still has its own core


@dataclass(frozen=True)
class Probes:
    """What the cause probes measured: one rank alone per (policy, world size), memory bandwidth, and the
    all-reduce microbenchmark."""

    rank_alone: dict[str, dict[int, float]] = field(default_factory=dict)   # policy -> world size -> median s
    rank_threads: dict[str, dict[int, int]] = field(default_factory=dict)   # its compute threads
    bandwidth: dict[int, dict] = field(default_factory=dict)                 # engine.bandwidth.bandwidth_curve
    rank_alone_cpu: dict[str, dict[int, float]] = field(default_factory=dict)   # its median CPU s per step
    allreduce: dict[str, dict[int, dict]] = field(default_factory=dict)   # engine.allreduce_bench results


@dataclass(frozen=True)
class Claim:
    claim: str
    evidence: str
    verdict: str


def probes_from(rank_alone: LaunchSeries, bandwidth: dict | None,
                allreduce: dict[tuple[str, int], dict] | None = None) -> Probes:
    """Probes from the rank-alone launches (keyed by the world size they stand for), the bandwidth curve and
    the all-reduce microbenchmarks (keyed by (policy, world size))."""
    medians: dict[str, dict[int, float]] = {}
    threads: dict[str, dict[int, int]] = {}
    cpu: dict[str, dict[int, float]] = {}
    for (policy, ws), launches in rank_alone.items():
        times = [t for launch in launches if launch.finished for t in launch.kept_step_times]
        if times:
            medians.setdefault(policy, {})[ws] = float(np.median(times))
            plan = launches[0].env["thread_plans"][0]
            threads.setdefault(policy, {})[ws] = plan["intra_op"] or launches[0].env.get("cores_available") or 1
        median_cpu = median_of(finished_kept_records(launches), "cpu_time")
        if median_cpu is not None:
            cpu.setdefault(policy, {})[ws] = median_cpu
    benches: dict[str, dict[int, dict]] = {}
    for (policy, ws), result in (allreduce or {}).items():
        benches.setdefault(policy, {})[ws] = result
    return Probes(medians, threads, {int(count): row for count, row in (bandwidth or {}).items()}, cpu, benches)


def _processes(count: int) -> str:
    return f"{count} process" + ("" if count == 1 else "es")


def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


def _largest(a: PolicyAnalysis) -> int:
    return max(a.breakdowns)


def sweet_spot(a: PolicyAnalysis) -> Claim:
    text = "4 processes is the sweet spot, about 2x faster than 2"
    if 2 not in a.breakdowns or 4 not in a.breakdowns:
        return Claim(text, "2 and 4 processes were not both measured", NOT_MEASURABLE)
    two, four = a.point_at(2), a.point_at(4)
    ratio = four.samples_per_second / two.samples_per_second
    evidence = (f"fastest: {_processes(a.fastest_world_size)}; 4 processes train {ratio:.2f}x the samples per "
                f"second of 2")
    if four.oversubscribed:        # a claim about a machine with a core per rank, which this one is not
        cores = f"{a.cores} cores" if a.cores else "fewer cores than ranks"
        return Claim(text, f"{evidence}; but 4 processes need at least 4 cores (one per rank) to test it, and "
                           f"this run had {cores}, so 4 ranks oversubscribed them", NOT_MEASURABLE)
    return Claim(text, evidence, SUPPORTED if a.fastest_world_size == 4 and 1.6 <= ratio <= 2.4 else REFUTED)


def communication(a: PolicyAnalysis) -> Claim:
    text = "communication overhead (process synchronization, message passing) slows the larger runs"
    ws = _largest(a)
    if ws == min(a.breakdowns) or a.comm_seconds.get(ws) is None:
        return Claim(text, "no instrumented world size above the smallest", NOT_MEASURABLE)
    parts = a.breakdowns[ws]
    share = parts.exposed_comm_time / parts.step_time
    evidence = (f"at {ws} processes all-reduce takes {a.comm_seconds[ws]:.3f} s per step, of which "
                f"{parts.exposed_comm_time:.3f} s ({_pct(share)} of the step) is not hidden behind backward")
    return Claim(text, evidence, SUPPORTED if share >= MATERIAL_SHARE else REFUTED)


def memory_bandwidth(a: PolicyAnalysis, probes: Probes) -> Claim:
    text = "memory bandwidth runs out as processes are added"
    own_core = {count: row for count, row in probes.bandwidth.items() if not row["shares_cores"]}
    if 1 not in own_core or len(own_core) < 2:
        return Claim(text, "needs the bandwidth probe at 1 and more processes (--probes 1); the guest exposes no "
                     "hardware counters", NOT_MEASURABLE)
    most = max(own_core)
    one, many = own_core[1]["mean_per_process_gbs"], own_core[most]["mean_per_process_gbs"]
    drop = 1.0 - many / one
    evidence = (f"triad: 1 process {one:.1f} GB/s; {most} processes, each on its own core, {many:.1f} GB/s each "
                f"({own_core[most]['total_gbs']:.1f} GB/s in all, {_pct(drop)} less per process)")
    return Claim(text, evidence, SUPPORTED if drop >= BANDWIDTH_DROP else REFUTED)


def caches(a: PolicyAnalysis) -> Claim:
    return Claim("processes contend for caches",
                 "cache misses need hardware performance counters (perf_event_open), which this guest does not "
                 "expose", NOT_MEASURABLE)


def context_switching(a: PolicyAnalysis) -> Claim:
    text = "context switching (more busy threads than cores)"
    measured = {ws: cpu for ws, cpu in a.cpu.items() if cpu is not None and cpu["median_run_queue_wait_share"]
                is not None}
    if len(measured) < 2:
        return Claim(text, "needs the CPU fields of the records at two world sizes", NOT_MEASURABLE)
    low, high = min(measured), max(measured)
    wait_low, wait_high = (measured[low]["median_run_queue_wait_share"],
                           measured[high]["median_run_queue_wait_share"])
    evidence = (f"threads waited for a core {_pct(wait_low)} of the step at {low} and {_pct(wait_high)} at {high} "
                f"processes (median); involuntary switches per step {measured[low]['ctx_switches_involuntary']:.0f}"
                f" and {measured[high]['ctx_switches_involuntary']:.0f}")
    grew = wait_high >= 0.05 and wait_high > 2 * wait_low
    return Claim(text, evidence, SUPPORTED if grew else REFUTED)


def smaller_batches(a: PolicyAnalysis, probes: Probes) -> Claim:
    """Core-seconds per sample of one rank alone at N ranks' per-rank batch and thread budget, against 1
    process: what splitting the batch (and the threads) costs before any neighbour or message."""
    text = "smaller per-process batches compute less efficiently"
    alone = probes.rank_alone.get(a.policy, {})
    if a.reference_world_size != 1 or not alone or 1 not in a.threads:
        return Claim(text, "needs 1 process and the rank-alone probe at a larger world size (--probes 1)",
                     NOT_MEASURABLE)
    one = a.point_at(1).step_time.point * a.threads[1]
    costs = {ws: ws * seconds * probes.rank_threads[a.policy][ws] / one for ws, seconds in sorted(alone.items())}
    worst = max(costs, key=costs.get)
    evidence = "; ".join(f"a rank alone at {ws} processes' batch needs {cost:.2f}x the core-seconds per sample of "
                         f"1 process" for ws, cost in costs.items())
    return Claim(text, evidence, SUPPORTED if costs[worst] >= 1 + MATERIAL_SHARE else REFUTED)


def load_imbalance(a: PolicyAnalysis) -> Claim:
    text = "load imbalance between processes"
    sizes = [ws for ws in a.breakdowns if ws > 1]
    if not sizes:
        return Claim(text, "no world size above 1", NOT_MEASURABLE)
    worst = max(sizes, key=lambda ws: a.breakdowns[ws].wait_time / a.breakdowns[ws].step_time)
    share = a.breakdowns[worst].wait_time / a.breakdowns[worst].step_time
    straggler = a.skew[worst]["straggler_rank"]
    evidence = (f"the slowest rank took {_pct(share)} of the step longer than the mean rank at {worst} processes; "
                + ("no rank was persistently slowest" if straggler is None else f"rank {straggler} was the straggler"))
    return Claim(text, evidence, SUPPORTED if share >= MATERIAL_SHARE or straggler is not None else REFUTED)


def synchronization(a: PolicyAnalysis) -> Claim:
    text = "synchronization points (every step waits for every rank)"
    ws = _largest(a)
    if ws == 1:
        return Claim(text, "no world size above 1", NOT_MEASURABLE)
    parts = a.breakdowns[ws]
    share = (parts.wait_time + parts.exposed_comm_time) / parts.step_time
    evidence = (f"at {ws} processes waiting for the slowest rank and for the all-reduce after backward take "
                f"{_pct(share)} of the step")
    return Claim(text, evidence, SUPPORTED if share >= MATERIAL_SHARE else REFUTED)


def assess(a: PolicyAnalysis, probes: Probes | None = None) -> list[Claim]:
    probes = probes or Probes()
    return [sweet_spot(a), communication(a), memory_bandwidth(a, probes), caches(a), context_switching(a),
            smaller_batches(a, probes), load_imbalance(a), synchronization(a)]
