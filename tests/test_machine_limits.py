"""The machine as a container or a CI runner gives it, against the real kernel (``cgroup_harness``: root, cgroup
v1 or v2): a one-CPU quota is one core and makes two processes oversubscribed; a memory limit that holds one or
two ranks but not eight skips eight with the numbers while the session reports and saves; a rank pushed past
the limit mid-launch fails its launch naming the out-of-memory killer, and the session survives to report.
Slow (``./run test-slow``): each runs the real sweep or suite in its cgroup."""
import json
import subprocess
from pathlib import Path

import pytest
from cgroup_harness import cgroup_oom_kills, limited_cgroup
from suite_helpers import ROOT, clean_env

from lanemodel.records import load_launch

pytestmark = [pytest.mark.engine, pytest.mark.slow]
GIB = 2**30


def test_a_one_cpu_quota_is_one_core_and_two_processes_are_oversubscribed(tmp_path, synth_data):
    with limited_cgroup(cpu_quota_us=100000) as (inside, _):
        proc = subprocess.run([*inside, "-m", "lanemodel", "sweep", "--data", str(synth_data), "--world-sizes", "1,2",
                               "--steps", "4", "--drop-warmup", "1", "--global-batch", "4",
                               "--results-dir", str(tmp_path)],
                              cwd=ROOT, capture_output=True, text=True, timeout=600, env=clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = (load_launch(tmp_path / f"metrics_tuned_ws{ws}_launch0.json") for ws in (1, 2))
    for launch in (one, two):
        assert launch.env["cores_available"] == 1
        assert launch.env["cores_source"].startswith("1 CPU: cgroup quota 100000/100000 us (1 CPU); affinity")
    assert not one.oversubscribed and two.oversubscribed
    assert "1 available to the run (1 CPU: cgroup quota 100000/100000 us" in (tmp_path / "REPORT.md").read_text()


def test_a_memory_limit_skips_the_world_size_that_would_not_fit_and_the_session_reports_and_saves(tmp_path):
    with limited_cgroup(memory_bytes=3 * GIB) as (inside, made):
        proc = subprocess.run([*inside, "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "-rs",
                               "--world-sizes", "1,2,8", "--steps", "6", "--rounds", "1", "--probes", "0",
                               "--results-dir", str(tmp_path / "results"),
                               f"--benchmark-storage=file://{tmp_path / 'storage'}", "--benchmark-save=limited"],
                              cwd=ROOT, capture_output=True, text=True, timeout=900, env=clean_env())
        kills = cgroup_oom_kills(made["memory"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert kills == 0                                        # no process of the session was killed
    assert "SKIPPED" in proc.stdout and "not run: needs about" in proc.stdout
    report = (tmp_path / "results" / "REPORT.md").read_text()
    assert "world size 8 (tuned) not run: needs about" in report and "GiB available" in report
    (saved,) = (tmp_path / "storage").rglob("*_limited.json")
    sizes = sorted(bench["extra_info"]["world_size"] for bench in json.loads(saved.read_text())["benchmarks"]
                   if "world_size" in bench["extra_info"])
    assert sizes == [1, 2]


DRIVER = """
import json, sys
from lanemodel.session.errors import LaunchFailed
from lanemodel.session.opening import open_session
from lanemodel.settings import parse_settings

opts = parse_settings({"world_sizes": "2", "steps": "6", "drop_warmup": "1", "rounds": "1", "warmup_launches": "0",
                       "probes": "0", "results_dir": sys.argv[1]})
session = open_session(opts)
session.launcher.fault = "hog:1:3"            # rank 1 takes memory before its step 3 until the kernel kills it
error = ""
try:
    session.measure(("tuned", 2))
except LaunchFailed as exc:
    error = str(exc)
outcome = session.conclude()
session.close()
print(json.dumps({"error": error, "partial": outcome.partial, "report": outcome.files["report"]}))
"""


def test_a_rank_pushed_past_the_limit_fails_its_launch_naming_the_oom_killer_and_the_session_reports(tmp_path):
    with limited_cgroup(memory_bytes=3 * GIB) as (inside, made):
        proc = subprocess.run([*inside, "-c", DRIVER, str(tmp_path / "results")], cwd=ROOT, capture_output=True,
                              text=True, timeout=600, env=clean_env())
        kills = cgroup_oom_kills(made["memory"])
    assert proc.returncode == 0, proc.stderr[-3000:]        # the session process survived
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "rank 1 was killed by signal SIGKILL (the out-of-memory killer: " in found["error"], found["error"]
    assert kills >= 1
    assert any("launch 1 failed" in note and "out-of-memory killer" in note for note in found["partial"])
    assert "out-of-memory killer" in Path(found["report"]).read_text()
    launch = load_launch(tmp_path / "results" / "metrics_tuned_ws2_launch0.json")    # kept, with its steps
    assert launch.error and len(launch.run_step_times) >= 2
