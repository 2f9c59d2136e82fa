"""How many launches each world size gets within a session's time budget.

A launch is the sample, and its cost grows with the world size (more interpreters to start, slower steps
once the cores are oversubscribed), while the report leans on some medians more than on others: the
smallest world size's median enters every speedup, the fastest world size and its runner-up decide the
"sweet spot", and the largest world size is the scaling model's held-out point. Until launches are measured
their launch-to-launch spread is taken as equal, so the variance of a world size's mean log median is
sigma^2 / n, and one more launch at world size i narrows what the report shows by
weight_i x (1/n_i - 1/(n_i + 1)) for cost_i seconds. The plan adds, one at a time, the launch with the
largest gain per second that still fits the budget. The session re-plans after each world size's first
launch, with that cost measured instead of estimated.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

Key = tuple[str, int]     # (thread policy, world size), in the order the session measures them
MIN_LAUNCHES = 1          # every world size of the curve gets a launch; precision is then reported, not faked
ALLREDUCE_PROBE_SHARE = 0.08  # all-reduce microbenchmark / one launch at the same world size: 0.05-0.14 here
                              # (its ranks forked from the fork server; fresh interpreters took 0.22-0.38)


@dataclass(frozen=True)
class LaunchPlan:
    """Launches per (policy, world size), what they are projected to cost, and why each got its share."""

    launches: dict[Key, int]          # measured launches in all, done ones included, in the session's order
    costs: dict[Key, float]           # seconds of one launch: measured, or estimated (``estimated``)
    reasons: dict[Key, list[str]]     # what its median is used for
    budget_s: float
    spent_s: float = 0.0              # seconds of the budget already spent (launches done, probes, warm-up)
    overhead_s: float = 0.0           # seconds kept aside for the probes still to run
    done: dict[Key, int] = field(default_factory=dict)      # launches already run
    estimated: frozenset[Key] = frozenset()                 # keys whose cost is not measured yet

    @property
    def seconds(self) -> float:
        """Projected wall time of the session's launches and probes, from its first launch."""
        return (self.spent_s + self.overhead_s
                + sum(self.costs[key] * (n - self.done.get(key, 0)) for key, n in self.launches.items()))

    @property
    def over_budget(self) -> bool:
        return self.seconds > self.budget_s + 1e-9

    def committed_after(self, key: Key) -> float:
        """Seconds the keys measured after ``key`` still need for their first launch, and the probes: what
        ``key``'s extra launches must leave of the budget."""
        order = list(self.launches)
        later = order[order.index(key) + 1:]
        return sum(self.costs[k] for k in later if not self.done.get(k)) + self.overhead_s

    def headline(self) -> str:
        counts = sorted(self.launches.values())
        share = f"{counts[0]}-{counts[-1]}" if counts[0] != counts[-1] else f"{counts[0]}"
        sizes = len({ws for _, ws in self.launches})
        text = (f"about {self.seconds / 60:.1f} min of launches and probes: {sizes} world sizes, {share} "
                f"launches each, within the session budget of {self.budget_s:g} s")
        if self.over_budget:
            text += " (over it: every world size gets one launch; give more seconds or fewer world sizes)"
        return text

    def line(self, key: Key) -> str:
        policy, ws = key
        cost = f"{'estimated ' if key in self.estimated else ''}{self.costs[key]:.0f} s a launch"
        why = f"; {'; '.join(self.reasons[key])}" if self.reasons[key] else ""
        count = self.launches[key]
        return f"world size {ws} ({policy}): {count} launch{'es' if count != 1 else ''} ({cost}{why})"

    def lines(self) -> list[str]:
        return [self.line(key) for key in self.launches]

    def as_json(self) -> dict:
        return {"budget_s": self.budget_s, "projected_s": round(self.seconds, 1),
                "world_sizes": [{"threads": policy, "world_size": ws, "launches": n,
                                 "cost_s": round(self.costs[policy, ws], 2), "reasons": self.reasons[policy, ws]}
                                for (policy, ws), n in self.launches.items()]}


def estimate_costs(measured: Mapping[int, float], sizes: Collection[int], cores: int) -> dict[int, float]:
    """Seconds of one launch at every world size of ``sizes`` from those measured: linear in the world size
    between measured neighbours (start-up and oversubscribed steps both grow about linearly with the ranks
    past the cores: 7, 9, 16, 33, 62 s at 1, 2, 4, 8, 16 ranks on 2 cores here); beyond them, in proportion
    to max(1, N / cores) from the nearest measured one."""
    if not measured:
        raise ValueError("no measured launch to estimate the others from")
    known = sorted(measured)
    costs = {}
    for ws in sizes:
        if ws in measured:
            costs[ws] = measured[ws]
            continue
        below = [m for m in known if m < ws]
        above = [m for m in known if m > ws]
        if below and above:
            low, high = below[-1], above[0]
            costs[ws] = measured[low] + (measured[high] - measured[low]) * (ws - low) / (high - low)
        else:
            near = below[-1] if below else above[0]
            costs[ws] = measured[near] * max(1.0, ws / cores) / max(1.0, near / cores)
    return costs


def probe_seconds(costs: Mapping[Key, float], rank_alone_s: float) -> float:
    """Seconds the cause probes of ``costs``' world sizes take: one rank alone (about one launch of one rank)
    and the all-reduce microbenchmark (N forked ranks: mostly the collective itself) above one process."""
    return sum(rank_alone_s + ALLREDUCE_PROBE_SHARE * cost for (_, ws), cost in costs.items() if ws > 1)


def importance(throughput: Mapping[int, float], sizes: Collection[int]) -> tuple[dict[int, float],
                                                                                dict[int, list[str]]]:
    """Weight of each world size's median in what one policy's curve concludes; ``throughput`` (samples per
    second, measured so far) ranks the candidates for the fastest."""
    sizes = sorted(sizes)
    weights = {ws: 1.0 for ws in sizes}
    reasons: dict[int, list[str]] = {ws: [] for ws in sizes}
    if len(sizes) > 1:
        weights[sizes[0]] += len(sizes) - 1
        reasons[sizes[0]].append("its median enters every speedup")
        ranked = sorted((ws for ws in sizes if ws in throughput), key=lambda ws: -throughput[ws])
        for ws, role in zip(ranked[:2], ("fastest so far", "second fastest so far")):
            weights[ws] += 1.0
            reasons[ws].append(role)
        weights[sizes[-1]] += 1.0
        reasons[sizes[-1]].append("the scaling model's held-out point")
    return weights, reasons


def plan_launches(costs: Mapping[Key, float], throughput: Mapping[Key, float], budget_s: float, *,
                  spent_s: float = 0.0, overhead_s: float = 0.0, done: Mapping[Key, int] | None = None,
                  finished: Collection[Key] = (), estimated: Collection[Key] = (),
                  max_launches: int = 20) -> LaunchPlan:
    """Launches per key: at least one (and at least those ``done``), then one at a time where it narrows the
    weighted intervals most per second, while the budget (less ``spent_s`` and ``overhead_s``) allows, at most
    ``max_launches``; ``finished`` keys keep the launches they ran."""
    if not costs:
        raise ValueError("no world size to plan")
    if any(c <= 0 for c in costs.values()):
        raise ValueError(f"launch costs must be > 0 s, got {dict(costs)}")
    done = dict(done or {})
    weights: dict[Key, float] = {}
    reasons: dict[Key, list[str]] = {}
    for policy in dict.fromkeys(policy for policy, _ in costs):
        sizes = [ws for p, ws in costs if p == policy]
        w, r = importance({ws: t for (p, ws), t in throughput.items() if p == policy}, sizes)
        weights.update({(policy, ws): v for ws, v in w.items()})
        reasons.update({(policy, ws): v for ws, v in r.items()})
    launches = {key: max(MIN_LAUNCHES, done.get(key, 0)) for key in costs}
    left = budget_s - spent_s - overhead_s - sum(costs[k] * (n - done.get(k, 0)) for k, n in launches.items())
    open_keys = [key for key in costs if key not in finished]
    while True:
        affordable = [key for key in open_keys if launches[key] < max_launches and costs[key] <= left]
        if not affordable:
            break
        best = max(affordable, key=lambda k: weights[k] / (launches[k] * (launches[k] + 1)) / costs[k])
        launches[best] += 1
        left -= costs[best]
    return LaunchPlan(launches, dict(costs), reasons, budget_s, spent_s, overhead_s, done,
                      frozenset(estimated))
