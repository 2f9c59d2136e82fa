"""The gate's verdicts as pytest items (``test_scaling_gate[tuned-ws2-step_time]``): which items a session
has, where they run (after every benchmark and probe), what each needs measured, and what each verdict makes
of its item (the plugin's hooks call these).

An item needs the launches of its world size and, for efficiency, those of its policy's smallest world size:
when ``-k`` or ``--lf`` selects a gate item without them, those benchmarks are selected again, since a verdict
without its launches has nothing to judge.
"""
from __future__ import annotations

import pytest

from lanemodel.analysis.gate import EFFICIENCY, STEP_TIME
from lanemodel.analysis.outcome import SuiteOutcome
from lanemodel.settings import SweepSettings

GATE_MARKER = "scaling_gate"
METRICS = {"step_time": STEP_TIME, "efficiency": EFFICIENCY}     # the item's id -> the verdict's metric


def gate_cases(opts: SweepSettings) -> list[tuple[str, int, str]]:
    """(policy, world size, metric) of every verdict the gate can give: efficiency above the smallest size."""
    sizes = opts.launch.world_sizes
    return [(policy, ws, metric) for policy in opts.launch.threads for ws in sizes for metric in METRICS
            if metric == "step_time" or ws > min(sizes)]


def compares(config: pytest.Config, opts: SweepSettings) -> bool:
    """Whether this session is gated against anything (REF, the history, a saved baseline)."""
    return bool(opts.ab.ref or opts.gate.history or opts.gate.baseline
                or config.getoption("benchmark_compare", None))


def _key(item: pytest.Item) -> tuple[str, int]:
    return item.callspec.params["thread_policy"], item.callspec.params["world_size"]


def with_needed_benchmarks(collected: list[pytest.Item], items: list[pytest.Item], benchmark_marker: str) -> None:
    """Once every other plugin has selected items (``-k``, ``--lf``, ``-m``): the gate items run last, with the
    benchmarks they need selected again (``collected``: the items before any selection)."""
    gates = [item for item in items if item.get_closest_marker(GATE_MARKER)]
    if not gates:
        return
    benchmarks = {_key(item): item for item in collected if item.get_closest_marker(benchmark_marker)}
    needed = set()
    for item in gates:
        policy, ws = _key(item)
        needed.add((policy, ws))
        if item.callspec.params["gate_metric"] == "efficiency":
            needed.add((policy, min(size for p, size in benchmarks if p == policy)))
    selected = {_key(item) for item in items if item.get_closest_marker(benchmark_marker)}
    again = [item for key, item in benchmarks.items() if key in needed - selected]
    items[:] = again + [item for item in items if not item.get_closest_marker(GATE_MARKER)] + gates


def judge_item(outcome: SuiteOutcome | None, policy: str, world_size: int, metric: str) -> None:
    """The item's outcome from the session's verdict: regressed fails, inconclusive is an xfail, pass passes;
    nothing to judge (no launch finished, the comparison refused, a world size only one side has) skips."""
    if outcome is None:
        pytest.skip("no launch finished in this session, so nothing was gated")
    if outcome.gate is None:
        pytest.skip("nothing to compare with: no saved baseline was found")
    if outcome.gate.refused:
        pytest.skip(f"not compared: {outcome.gate.refused}")
    found = [v for v in outcome.verdicts if (v.policy, v.world_size, v.metric) == (policy, world_size, METRICS[metric])]
    if not found:
        pytest.skip(f"world size {world_size} ({policy}) has no {metric} verdict: "
                    + ("; ".join(outcome.gate_notes) or "not measured on both sides"))
    verdict = found[0]
    text = f"{verdict.describe()}; against {outcome.baseline_name}"
    if verdict.verdict == "regressed":
        pytest.fail(f"REGRESSED: {text}", pytrace=False)
    if verdict.verdict == "inconclusive":
        pytest.xfail(f"inconclusive, not a failure (the launches could not decide either way): {text}")
