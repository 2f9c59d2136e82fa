"""The session plan (--rounds auto): how many launches each world size gets within --scaling-session-budget-s.

A planned session measures the world sizes from the largest down: the costliest launches are measured
first, so the cheap world sizes, last, take what the budget leaves, and an estimate that was off costs
little. One short warm-up launch at the smallest world size starts the session (it builds the frame cache
and warms the page cache; a full warm-up at every world size cost 9-62 s each here and changed no median
by more than the launch-to-launch spread), and costs the first plan, printed before anything is measured.
After each world size's first launch the plan is made again with that cost measured.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable

from lanemodel.analysis.launchplan import Key, LaunchPlan, estimate_costs, plan_launches, probe_seconds
from lanemodel.engine.progress import Progress
from lanemodel.records import Launch
from lanemodel.settings import SweepSettings

BANDWIDTH_PROBE_S = 10.0     # the memory-bandwidth probe (1, 2, 4 pinned processes, 1 s each): 6-8 s here


def projected_launch(launch: Launch, steps: int) -> tuple[float, float]:
    """(seconds a launch of ``steps`` steps takes, samples per second) from a launch that may have run fewer:
    its wall time plus its median kept step for each step it did not run."""
    step = statistics.median(launch.kept_step_times)
    missing = max(steps - len(launch.run_step_times), 0)
    return launch.wall_time + missing * step, launch.global_batch_size / step


def cold_start_seconds(launch: Launch, cores: int) -> float:
    """Seconds the slowest rank's imports took beyond their CPU time and their share of the cores: waiting
    for the disk, on the first launch after the page cache lost torch's files (a fresh clone, or minutes
    idle on these guests: 12-16 s), which the session's later launches do not pay."""
    metas = [m for m in launch.rank_metas if "imports_cpu_time" in m and "entry_time" in m]
    sharing = max(1.0, len(metas) / max(cores, 1))
    waits = [m["imports_done_time"] - m["entry_time"] - m["imports_cpu_time"] * sharing for m in metas]
    return max(waits + [0.0])


class SessionPlanner:
    """Keeps the plan of a planned session and makes it again as costs are measured."""

    def __init__(self, opts: SweepSettings, order: list[Key], elapsed: Callable[[], float],
                 launches_run: Callable[[Key], int], progress: Progress | None, cores: int):
        self.opts = opts
        self.order = order                       # the keys in the order the session measures them
        self.elapsed = elapsed                   # seconds since the session's first launch
        self.launches_run = launches_run         # measured launches run so far at a key
        self.progress = progress
        self.cores = cores
        self.start = 0                           # index in ``order`` of the world size being measured
        self.measured: dict[Key, float] = {}     # seconds of one launch
        self.throughput: dict[Key, float] = {}   # samples per second
        self.plan: LaunchPlan | None = None

    def warm_up(self, run_warmup: Callable[[Key, int], Launch]) -> None:
        """The session's warm-up launches (``run_warmup(key, steps)``), short, at the smallest world size; the
        first plan from them."""
        policy, ws = self.opts.launch.threads[0], min(self.opts.launch.world_sizes)
        steps = min(self.opts.workload.steps, self.opts.workload.drop_warmup + 2)
        launch = None
        for _ in range(self.opts.plan.warmup_launches):
            launch = run_warmup((policy, ws), steps)
        if launch is None:
            self.note(f"session budget {self.opts.plan.session_budget_s:g} s: no warm-up launch to cost a plan "
                      f"with (--warmup-launches 0); planned after the first launch")
            return
        cost, self.throughput[policy, ws] = projected_launch(launch, self.opts.workload.steps)
        cold = cold_start_seconds(launch, self.cores)
        self.measured[policy, ws] = cost - cold
        self.replan()
        left_out = f" (less its imports' {cold:.0f} s waiting for the disk: a cold start)" if cold >= 1 else ""
        self.note(f"plan: {self.plan.headline()}; from the largest world size down, costs estimated from a "
                  f"{steps}-step warm-up launch{left_out} and made again after each world size's first launch")
        for line in self.plan.lines():
            self.note("  " + line)

    def first_launch(self, key: Key, launch: Launch) -> None:
        """A world size's first launch measured its cost: plan again."""
        if launch.finished and launch.wall_time:
            self.measured[key] = launch.wall_time
            self.throughput[key] = launch.global_batch_size / statistics.median(launch.kept_step_times)
        if not self.measured:
            return
        self.replan(current=key)
        self.note(f"plan: {self.plan.line(key)}; the session: {self.plan.headline()}")

    def drop(self, key: Key) -> None:
        """``key`` will not be measured (it would not fit in memory): the plan is made again without it."""
        at = self.order.index(key)
        self.order.remove(key)
        if self.plan is not None and self.measured and at < len(self.order):
            self.replan(current=self.order[at])

    def launches_left(self) -> int:
        """Planned launches not run yet, rank-alone probes of world sizes not yet measured included."""
        if self.plan is None:
            return 0
        left = sum(max(n - self.launches_run(key), 0) for key, n in self.plan.launches.items())
        probes = sum(1 for _, ws in self.order[self.start:] if ws > 1)
        return left + (probes if self.opts.plan.probes else 0)

    def note(self, text: str) -> None:
        """A line on the terminal, and the progress count made right for the plan (once there is one)."""
        if self.progress is not None:
            if self.plan is not None:
                self.progress.total_launches = self.progress.done + self.launches_left()
            self.progress.note(text)

    def replan(self, current: Key | None = None) -> None:
        self.start = start = self.order.index(current) if current is not None else 0
        costs, estimated = self._costs()
        rank_alone = estimate_costs(self._measured_sizes(self.opts.launch.threads[0]), [1], self.cores)[1]
        pending = {key: cost for key, cost in costs.items() if self.order.index(key) >= start}
        overhead = (probe_seconds(pending, rank_alone) if self.opts.plan.probes else 0.0) + (
            BANDWIDTH_PROBE_S if self.opts.plan.probes else 0.0)
        self.plan = plan_launches(costs, self.throughput, self.opts.plan.session_budget_s,
                                  spent_s=self.elapsed(), overhead_s=overhead,
                                  done={key: self.launches_run(key) for key in self.order},
                                  finished=self.order[:start], estimated=estimated,
                                  max_launches=self.opts.plan.max_rounds)

    def _measured_sizes(self, policy: str) -> dict[int, float]:
        """This policy's measured launch costs by world size; another policy's where it has none yet."""
        own = {ws: cost for (p, ws), cost in self.measured.items() if p == policy}
        return own or {ws: cost for (_, ws), cost in self.measured.items()}

    def _costs(self) -> tuple[dict[Key, float], set[Key]]:
        costs: dict[Key, float] = {}
        for policy in dict.fromkeys(p for p, _ in self.order):
            sizes = [ws for p, ws in self.order if p == policy]
            costs.update({(policy, ws): c for ws, c in
                          estimate_costs(self._measured_sizes(policy), sizes, self.cores).items()})
        ordered = {key: costs[key] for key in self.order}
        return ordered, {key for key in self.order if key not in self.measured}
