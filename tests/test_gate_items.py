"""The gate's verdicts as pytest items: which a session has, what -k selects with them, what each verdict
makes of its item, and options from LANEBENCH_* variables (all without a launch: collection only)."""
import subprocess
import sys

import _pytest.outcomes
import pytest
from suite_helpers import ROOT, clean_env

from lanemodel.analysis.gate import GateResult, GateSettings, GateVerdict
from lanemodel.analysis.outcome import SuiteOutcome
from lanemodel.suite.gate_items import judge_item


def collect(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Collection only, world sizes 1,2,4 unless ``env`` sets them."""
    sizes = [] if "LANEBENCH_WORLD_SIZES" in (env or {}) else ["--world-sizes", "1,2,4"]
    return subprocess.run([sys.executable, "-m", "pytest", "benchmarks/", "--collect-only", "-q", "-p",
                           "no:cacheprovider", *sizes, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**clean_env(), **(env or {})})


def listed(proc: subprocess.CompletedProcess) -> list[str]:
    return [line.split("::")[1] for line in proc.stdout.splitlines() if "::" in line]


def test_a_comparing_session_has_one_gate_item_per_verdict_after_every_benchmark(tmp_path):
    proc = collect("--benchmark-compare", f"--benchmark-storage=file://{tmp_path}")
    items = listed(proc)
    gates = [item for item in items if item.startswith("test_scaling_gate")]
    assert gates == ["test_scaling_gate[tuned-ws1-step_time]", "test_scaling_gate[tuned-ws2-step_time]",
                     "test_scaling_gate[tuned-ws2-efficiency]", "test_scaling_gate[tuned-ws4-step_time]",
                     "test_scaling_gate[tuned-ws4-efficiency]"], proc.stdout
    assert items[-len(gates):] == gates and "test_memory_bandwidth" in items


def test_a_session_that_compares_with_nothing_has_no_gate_item():
    assert not [item for item in listed(collect()) if item.startswith("test_scaling_gate")]


def test_selecting_an_efficiency_verdict_brings_back_the_benchmarks_it_needs(tmp_path):
    proc = collect("--benchmark-compare", f"--benchmark-storage=file://{tmp_path}", "-k", "ws4-efficiency")
    assert listed(proc) == ["test_ddp_scaling[tuned-ws4]", "test_ddp_scaling[tuned-ws1]",   # planned: largest first
                            "test_scaling_gate[tuned-ws4-efficiency]"], proc.stdout


def test_options_come_from_lanebench_variables_and_a_bad_one_is_named(tmp_path):
    proc = collect(env={"LANEBENCH_WORLD_SIZES": "2,8"})
    assert [item for item in listed(proc) if item.startswith("test_ddp_scaling")] == [
        "test_ddp_scaling[tuned-ws8]", "test_ddp_scaling[tuned-ws2]"], proc.stdout     # planned: largest first
    bad = collect(env={"LANEBENCH_SCALING_AB_ROUNDS": "many"})
    assert bad.returncode == 4 and "LANEBENCH_SCALING_AB_ROUNDS (--scaling-ab-rounds): 'many' is not a whole" \
        in bad.stderr, bad.stderr


@pytest.mark.parametrize("where, message", [("dir", "is a directory"), ("under-file", "cannot be made")])
def test_a_summary_path_that_cannot_be_written_is_refused_before_any_launch(tmp_path, where, message):
    target = tmp_path if where == "dir" else tmp_path / "a-file" / "summary.md"
    (tmp_path / "a-file").write_text("")
    proc = collect("--scaling-summary-md", str(target))
    assert proc.returncode == 4 and f"--scaling-summary-md {target}: " in proc.stderr and message in proc.stderr


def verdict(ws: int, metric: str, said: str, ratio: float = 1.2) -> GateVerdict:
    return GateVerdict("b", "tuned", ws, metric, 0.2, 0.2 * ratio, ratio, ratio * 0.95, ratio * 1.05, 0.001, 0.01,
                       1.03, (8, 8), said)


def outcome_with(*verdicts: GateVerdict, refused: str = "") -> SuiteOutcome:
    return SuiteOutcome({}, {}, GateResult(list(verdicts), [], refused), GateSettings(), "main (abc), here")


def test_each_verdict_gives_its_item_the_outcome_ci_pages_list():
    found = outcome_with(verdict(1, "step_time_ratio", "pass", 1.0), verdict(2, "step_time_ratio", "regressed"),
                         verdict(2, "efficiency_ratio", "inconclusive", 0.98))
    judge_item(found, "tuned", 1, "step_time")                     # pass: returns
    with pytest.raises(_pytest.outcomes.Failed, match=r"REGRESSED: world size 2 \(tuned\): step_time_ratio 1.200 "
                                                       r"\[1.140, 1.260\] p=0.001 .* launches 8 vs 8 .*against main"):
        judge_item(found, "tuned", 2, "step_time")
    with pytest.raises(_pytest.outcomes.XFailed, match="inconclusive, not a failure"):
        judge_item(found, "tuned", 2, "efficiency")
    with pytest.raises(_pytest.outcomes.Skipped, match="no efficiency verdict"):
        judge_item(found, "tuned", 4, "efficiency")
    with pytest.raises(_pytest.outcomes.Skipped, match="not compared: nothing shared"):
        judge_item(outcome_with(refused="nothing shared"), "tuned", 1, "step_time")
    with pytest.raises(_pytest.outcomes.Skipped, match="no launch finished"):
        judge_item(None, "tuned", 1, "step_time")
