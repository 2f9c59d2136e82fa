"""A session as a new user runs it: planned within its time budget, and ended cleanly when interrupted
(SIGTERM during the first launch, between world sizes, during the probes)."""
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from suite_helpers import ROOT, clean_env, run_project

pytestmark = pytest.mark.engine
TINY = ["--world-sizes", "1,2", "--steps", "4", "--drop-warmup", "1", "--global-batch", "4"]


def test_a_planned_session_states_its_plan_measures_the_largest_first_and_reports_each_median_s_precision(tmp_path):
    proc = run_project(ROOT, tmp_path, *TINY, "--probes", "0", "--scaling-session-budget-s", "20",
                       "--benchmark-save=planned")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "plan: about" in out and "within the session budget of 20 s" in out
    assert out.index("world size 2: launch 1") < out.index("world size 1: launch 1")     # largest first
    (saved,) = (tmp_path / "storage").rglob("*_planned.json")
    scaling = json.loads(saved.read_text())["scaling"]
    ran = {int(ws): n for ws, n in scaling["analysis"]["tuned"]["launches"].items()}
    planned = {row["world_size"]: row["launches"] for row in scaling["plan"]["world_sizes"]}
    files = {ws: len(list((tmp_path / "results").glob(f"metrics_tuned_ws{ws}_launch*.json"))) for ws in (1, 2)}
    assert ran == files and all(1 <= ran[ws] <= planned[ws] for ws in (1, 2))
    assert scaling["plan"]["session_s"] < 20 + 15          # the budget held, give or take the last launch
    report = (tmp_path / "results" / "REPORT.md").read_text()
    assert "## Launches and precision" in report and "Session budget 20 s" in report
    assert not list((tmp_path / "results").glob("metrics_tuned_ws2_warmup.json"))   # one warm-up, at ws 1


def interrupt(tmp: Path, when: Callable[[str, Path], bool], *args: str) -> tuple[int, str]:
    """Run the suite, send SIGTERM once ``when(output so far, results dir)`` holds; (exit code, output)."""
    log = tmp / "session.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "-v",
                                 f"--benchmark-storage=file://{tmp / 'storage'}", "--benchmark-save=cut",
                                 "--results-dir", str(tmp / "results"), *TINY, *args],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=clean_env())
    try:
        deadline = time.monotonic() + 180
        while not when(log.read_text(), tmp / "results"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        proc.kill()
    return code, log.read_text()


def processes_under(path: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if str(path) in cmdline and entry.name != str(os.getpid()):
            found.append(cmdline)
    return found


def assert_ended_cleanly(code: int, output: str, tmp: Path) -> str:
    assert code == 2, output                                     # pytest's "interrupted"
    assert "Traceback" not in output and "INTERNALERROR" not in output and "min() arg" not in output, output
    assert "PARTIAL RUN: interrupted (terminated by signal SIGTERM)" in output
    assert not processes_under(tmp)
    report = (tmp / "results" / "REPORT.md").read_text()
    assert "**Partial run.**" in report
    return report


def test_sigterm_during_the_first_launch(tmp_path):
    code, output = interrupt(tmp_path, lambda out, results: any(
        path.stat().st_size for path in results.glob("runs/*/rank0.jsonl")), "--rounds", "1")
    report = assert_ended_cleanly(code, output, tmp_path)
    assert "No launch finished" in report
    assert not list((tmp_path / "storage").rglob("*_cut.json"))      # nothing measured, nothing saved


def test_sigterm_between_world_sizes_keeps_the_first_world_size(tmp_path):
    code, output = interrupt(tmp_path, lambda out, results: "test_ddp_scaling[tuned-ws1] PASSED" in out,
                             "--rounds", "1", "--probes", "0", "--warmup-launches", "0")
    report = assert_ended_cleanly(code, output, tmp_path)
    assert len(list((tmp_path / "results").glob("metrics_tuned_ws1_launch*.json"))) == 1
    assert "no finished launch at world size 2 (tuned)" in report
    (saved,) = (tmp_path / "storage").rglob("*_cut.json")
    names = [bench["name"] for bench in json.loads(saved.read_text())["benchmarks"]]
    assert names == ["test_ddp_scaling[tuned-ws1]"]


def test_sigterm_during_the_probes_keeps_the_launches(tmp_path):
    code, output = interrupt(tmp_path, lambda out, results: "all-reduce microbenchmark" in out,
                             "--world-sizes", "2", "--rounds", "1", "--probes", "1", "--warmup-launches", "0")
    report = assert_ended_cleanly(code, output, tmp_path)
    assert "during world size 2 (tuned), the cause probes" in report
    assert (tmp_path / "results" / "metrics_tuned_ws2_launch0.json").exists()
    (saved,) = (tmp_path / "storage").rglob("*_cut.json")
    run = json.loads(saved.read_text())
    (bench,) = run["benchmarks"]
    assert bench["extra_info"]["launches"] == 1 and "the cause probes" in run["scaling"]["partial"][0]
