"""Same-session A/B (--scaling-ab REF) and the gate against history (--scaling-history N), end to end."""
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from suite_helpers import ROOT, gate_lines, run_project, run_workflow_step, workflow_step

from benchmarks.calibration import slow_commit_clone
from lanemodel.engine.worktree import WORKTREE_PREFIX

pytestmark = pytest.mark.engine
# 2 blocks (a REF and a working-tree launch each) per world size, up to 4 where a verdict is inconclusive.
AB_RUN = ["--world-sizes", "1,2", "--steps", "5", "--drop-warmup", "1", "--global-batch", "4",
          "--scaling-ab-rounds", "2", "--warmup-launches", "0"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          timeout=60).stdout.strip()


def leftover_worktrees() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob(WORKTREE_PREFIX + "*")}


@pytest.fixture(scope="module")
def slow_repo(tmp_path_factory):
    """This project with one commit on top that makes every step twice as long."""
    return slow_commit_clone(tmp_path_factory.mktemp("slowrepo"), percent=100.0)


# The workflow's own variables, small: 2 processes only, 2 blocks (up to 4 while inconclusive), and a limit an
# A/A session cannot pass by chance (its point estimate would have to exceed 1.5) while a 2x commit does.
SMALL_WORKFLOW = {"LANEBENCH_WORLD_SIZES": "2", "LANEBENCH_STEPS": "5", "LANEBENCH_DROP_WARMUP": "1",
                  "LANEBENCH_GLOBAL_BATCH": "4", "LANEBENCH_WARMUP_LAUNCHES": "0", "LANEBENCH_SCALING_AB_ROUNDS": "2",
                  "LANEBENCH_SCALING_AB_MAX_SLOWDOWN": "1.5"}


def junit_cases(path: Path) -> dict[str, str]:
    """testcase name -> failure, skipped (xfail and skip) or passed."""
    import xml.etree.ElementTree as ET

    found = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        found[case.get("name")] = kinds[0] if kinds else "passed"
    return found


def test_the_pull_request_workflow_fails_a_commit_twice_as_slow_and_passes_unchanged_code(slow_repo, tmp_path):
    """The GitHub example's benchmark step, as written, in a clone whose last commit makes every step twice as
    long: against its parent it exits 1, with a failed JUnit item naming ws2 and step_time, both sides saved,
    the summary's headline naming 2 processes; against itself (A/A) it exits 0 with no failed item."""
    script, env = workflow_step("ab-gate", "bench")
    assert set(SMALL_WORKFLOW) <= set(env), "the test sets only variables the workflow itself uses"
    step_summary = tmp_path / "step_summary.md"
    before = leftover_worktrees()
    proc = run_workflow_step(slow_repo, script, {**env, **SMALL_WORKFLOW, "BASE_SHA": "HEAD~1",
                                                 "GITHUB_STEP_SUMMARY": str(step_summary)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    cases = junit_cases(slow_repo / "results" / "junit.xml")
    assert cases["test_scaling_gate[tuned-ws2-step_time]"] == "failure"
    assert cases["test_ddp_scaling[tuned-ws2]"] == "passed"
    steps = [line for line in gate_lines(proc.stdout) if "step_time_ratio" in line]
    assert len(steps) == 1 and "-> REGRESSED" in steps[0], steps
    summary = (slow_repo / "results" / "summary.md").read_text()
    assert summary.startswith("## DDP scaling gate\n\n**REGRESSED: ") and "2 processes' step time x" in summary
    assert "\n| 2 | tuned | step time | **REGRESSED** | " in summary
    assert step_summary.read_text() == summary
    parent = git(slow_repo, "rev-parse", "HEAD~1")
    storage = slow_repo / ".benchmarks"
    (ref_file,) = storage.rglob(f"*_ref-{parent[:12]}.json")
    (tree_file,) = storage.rglob("*_pr.json")
    assert ref_file.name < tree_file.name                       # REF is saved first
    ref, tree = json.loads(ref_file.read_text()), json.loads(tree_file.read_text())
    assert ref["commit_info"]["id"] == parent and ref["scaling"]["ab"]["side"] == "REF"
    assert ref["scaling"]["analysis"]["tuned"]["curve"] and tree["scaling"]["report_md"].startswith("# DDP scaling")
    for bench in ref["benchmarks"]:
        assert bench["extra_info"]["code"]["commit"] == parent
        assert bench["stats"]["rounds"] == bench["extra_info"]["launches"] == len(bench["extra_info"]["step_times"])
    for sides in tree["scaling"]["ab"]["order"].values():
        assert sides.count("ref") == sides.count("current") >= 2
    ratios = {v["world_size"]: v["ratio"] for v in tree["scaling"]["gate"]["verdicts"]
              if v["metric"] == "step_time_ratio"}
    assert list(ratios) == [2] and 1.6 < ratios[2] < 2.6, ratios
    ref_metrics = list((slow_repo / "results" / "ab_ref").glob("metrics_tuned_ws2_launch*.json"))
    assert len(ref_metrics) >= 2
    assert json.loads(ref_metrics[0].read_text())["launch"]["code"]["commit"] == parent
    assert leftover_worktrees() == before and len(git(slow_repo, "worktree", "list").splitlines()) == 1
    compared = subprocess.run([sys.executable, "-m", "pytest_benchmark", "--storage", f"file://{storage}",
                               "compare"], capture_output=True, text=True, timeout=120)
    assert compared.returncode == 0 and "test_ddp_scaling[tuned-ws2]" in compared.stdout

    # A/A without extra launches (LANEBENCH_SCALING_BUDGET_S 0): inconclusive verdicts are not failures
    same = run_workflow_step(slow_repo, script, {**env, **SMALL_WORKFLOW, "BASE_SHA": "HEAD",
                                                 "LANEBENCH_SCALING_BUDGET_S": "0"})
    assert same.returncode == 0, same.stdout + same.stderr
    cases = junit_cases(slow_repo / "results" / "junit.xml")
    gated = {name: kind for name, kind in cases.items() if name.startswith("test_scaling_gate")}
    assert list(gated) == ["test_scaling_gate[tuned-ws2-step_time]"] and gated[list(gated)[0]] != "failure", gated
    assert "REGRESSED" not in (slow_repo / "results" / "summary.md").read_text().split("\n")[2]


def test_a_failed_launch_leaves_no_worktree_behind(slow_repo, tmp_path):
    before = leftover_worktrees()
    proc = run_project(slow_repo, tmp_path, *AB_RUN, "--scaling-ab", "HEAD~1", "--launch-timeout", "0.5",
                       "--world-sizes", "1")
    assert proc.returncode == 1 and "timed out" in proc.stdout, proc.stdout + proc.stderr
    assert leftover_worktrees() == before and len(git(slow_repo, "worktree", "list").splitlines()) == 1


def test_sigterm_during_an_ab_session_removes_the_worktree(slow_repo, tmp_path):
    import signal
    import time

    from suite_helpers import clean_env

    before = leftover_worktrees()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "-q",
                             f"--benchmark-storage=file://{tmp_path / 'storage'}", "--results-dir",
                             str(tmp_path / "results"), *AB_RUN, "--scaling-ab", "HEAD~1"],
                            cwd=slow_repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env())
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "results").rglob("rank0.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.2)       # the first launch has begun, so REF is checked out
        assert leftover_worktrees() - before, "no worktree was made"
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) != 0
    finally:
        proc.kill()
    assert leftover_worktrees() == before and len(git(slow_repo, "worktree", "list").splitlines()) == 1


def test_a_ref_that_names_no_commit_is_refused_before_any_launch(tmp_path):
    proc = run_project(ROOT, tmp_path, *AB_RUN, "--scaling-ab", "no-such-ref-anywhere", timeout=120)
    assert proc.returncode == 4
    assert "--scaling-ab: 'no-such-ref-anywhere' names no commit" in proc.stderr
    assert not (tmp_path / "results" / "ab_ref").exists()


@pytest.mark.slow
def test_history_gate_judges_against_the_spread_of_saved_runs(tmp_path):
    """Two saved runs 3 % apart are the history; a run with every step twice as long regresses against it."""
    small = ["--world-sizes", "1", "--steps", "5", "--drop-warmup", "1", "--global-batch", "4", "--rounds", "2",
             "--scaling-max-rounds", "2", "--warmup-launches", "0", "--probes", "0"]
    first = run_project(ROOT, tmp_path, *small, "--benchmark-save=h")
    assert first.returncode == 0, first.stdout + first.stderr
    (saved,) = (tmp_path / "storage").rglob("0001_h.json")
    data = json.loads(saved.read_text())
    for bench in data["benchmarks"]:
        bench["extra_info"]["step_times"] = [[t * 1.03 for t in steps] for steps in bench["extra_info"]["step_times"]]
    saved.with_name("0002_h.json").write_text(json.dumps(data))
    proc = run_project(ROOT, tmp_path, *small, "--scaling-history", "5", "--inject-step-slowdown", "100")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "regression gate against the last 2 comparable saved runs (0001_h .. 0002_h)" in proc.stdout
    steps = [line for line in gate_lines(proc.stdout) if "step_time_ratio" in line]
    assert len(steps) == 1 and "-> REGRESSED" in steps[0], steps
    ratio = float(steps[0].split("step_time_ratio ")[1].split()[0])
    assert math.isfinite(ratio) and 1.5 < ratio < 2.7
