"""One history per machine: the example workflow's main-branch step, run three times as CI would run it on
three pushes, with the runner's CPU model changed before the third. Each run saves itself into the history;
none is refused: a machine with fewer than two saved runs of its own is not gated, and says so."""
import json
import subprocess

import pytest
from suite_helpers import clean_env, workflow_step
from test_doc_commands import scratch_copy
from test_suite_ab import junit_cases

pytestmark = pytest.mark.slow

SMALL = {"LANEBENCH_WORLD_SIZES": "1,2", "LANEBENCH_STEPS": "6", "LANEBENCH_DROP_WARMUP": "1",
         "LANEBENCH_ROUNDS": "1", "LANEBENCH_WARMUP_LAUNCHES": "0", "LANEBENCH_PROBES": "0",
         "LANEBENCH_SCALING_BUDGET_S": "0"}
OTHER_RUNNER = "AMD EPYC 7763 64-Core Processor"


def as_if_measured_on(path, cpu_model: str) -> None:
    """A saved run, as the runner of another CPU model would have saved it."""
    data = json.loads(path.read_text())
    data["scaling"]["config"]["cpu_model"] = cpu_model
    data["machine_info"]["cpu"]["brand_raw"] = cpu_model
    path.write_text(json.dumps(data))


def test_the_main_branch_step_keeps_one_history_per_runner_machine(tmp_path):
    script, env = workflow_step("history", "bench")
    tree = scratch_copy(tmp_path / "clone")
    (tree / "history").mkdir()

    def push() -> tuple[str, dict[str, str]]:
        done = subprocess.run(["bash", "-c", script], cwd=tree, capture_output=True, text=True, timeout=600,
                              env={**clean_env(), **env, **SMALL})
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        return (tree / "results" / "summary.md").read_text(), junit_cases(tree / "results" / "junit.xml")

    first, _ = push()
    assert "not gated: 0 comparable saved run(s) on this machine, 2 needed" in first
    second, _ = push()
    assert "not gated: 1 comparable saved run(s) on this machine, 2 needed" in second
    saved = sorted((tree / "history" / "storage").rglob("*_main.json"))
    assert len(saved) == 2
    for path in saved:                   # the runner changes: both earlier runs were another machine's
        as_if_measured_on(path, OTHER_RUNNER)
    third, cases = push()
    assert "not gated: 0 comparable saved run(s) on this machine, 2 needed" in third
    gates = {name: kind for name, kind in cases.items() if name.startswith("test_scaling_gate")}
    assert gates and set(gates.values()) == {"skipped"}, cases
    assert len(sorted((tree / "history" / "storage").rglob("*_main.json"))) == 3
