"""The Slurm launcher (``--launcher slurm``) against a real one-node Slurm started for these tests (Debian's
slurm-wlm and munge; ``slurm_cluster``): the suite's launches run as job steps, one task per rank, the records
name the launcher and each rank's host; a SIGKILLed task ends the step and fails the launch in time, records
kept and nothing left in squeue; what Slurm cannot run is refused before any launch. The cluster tests are
``slow`` (``./run test-slow``): starting Slurm and its job steps does not fit the main run's 15 minutes."""
import json
import os
import socket
import sys
import time

import pytest
from slurm_cluster import PARTITION, missing_binaries, queued, slurm_cluster
from suite_helpers import ROOT, run_project

from lanemodel.engine.slurmrunner import SlurmError, check_slurm

REQUIRE_SLURM = "LANEBENCH_REQUIRE_SLURM"    # CI sets it: a Slurm test it cannot run is a failure there, not a skip


def skip_or_fail(reason: str) -> None:
    if os.environ.get(REQUIRE_SLURM):
        pytest.fail(f"{REQUIRE_SLURM} is set, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        skip_or_fail(f"Slurm is not installed here ({', '.join(missing)} not on PATH; Debian: apt-get install "
                     f"slurm-wlm munge)")
    if os.geteuid() != 0:
        skip_or_fail("starting slurmd needs root")
    with slurm_cluster(tmp_path_factory.mktemp("slurm")) as env:
        yield env


@pytest.fixture
def slurm_env(slurm, monkeypatch):
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    return slurm


@pytest.mark.engine
@pytest.mark.slow
def test_the_suite_runs_its_launches_as_slurm_job_steps(slurm_env, tmp_path):
    proc = run_project(ROOT, tmp_path, "--launcher", "slurm", "--slurm-partition", PARTITION, "--world-sizes", "1,2",
                       "--steps", "6", "--rounds", "2", "--warmup-launches", "0", "--probes", "0",
                       "--global-batch", "4", "--drop-warmup", "2", env_extra=slurm_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = sorted((tmp_path / "results").glob("metrics_*.json"))
    assert len(metrics) == 4, metrics
    host = socket.gethostname()
    for path in metrics:
        doc = json.loads(path.read_text())
        assert doc["launch"]["launcher"] == "slurm"
        metas = doc["rank_metas"]
        assert [m["rank"] for m in metas] == list(range(doc["config"]["world_size"]))
        assert all(m["host"] == host and m["slurm_task"] for m in metas)
    assert queued(slurm_env) == []


@pytest.mark.engine
@pytest.mark.slow
def test_a_killed_task_ends_the_step_and_fails_the_launch_with_records_kept(slurm_env, synth_data, tmp_path):
    from lanemodel.engine.launcher import LaunchError, launch_ranks
    from lanemodel.engine.threads import available_cpus, parse_policy, plan_threads
    from lanemodel.training.config import TrainConfig

    os.environ["SLURM_PARTITION"] = PARTITION
    cfg = TrainConfig(data_dir=str(synth_data), steps=30, global_batch=4)
    plans = plan_threads(parse_policy("tuned"), 2, available_cpus())
    started = time.monotonic()
    with pytest.raises(LaunchError, match="failed under srun") as failure:
        launch_ranks(cfg, plans, tmp_path / "run", timeout_s=120, fault="sigkill:1:3", launcher="slurm")
    assert time.monotonic() - started < 30
    assert (tmp_path / "run" / "rank0.jsonl").read_text().count("\n") >= 3, failure.value
    time.sleep(2)
    assert queued(slurm_env) == []


def test_what_slurm_cannot_run_is_refused_naming_it(tmp_path):
    with pytest.raises(SlurmError, match="srun is not on PATH"):
        check_slurm((1, 2), "debug", {"PATH": str(tmp_path)})
    (tmp_path / "srun").write_text("#!/bin/sh\n")
    (tmp_path / "srun").chmod(0o755)
    with pytest.raises(SlurmError, match="outside an allocation needs --slurm-partition"):
        check_slurm((1, 2), "", {"PATH": str(tmp_path)})
    with pytest.raises(SlurmError, match="4 ranks do not fit the allocation's 2 tasks"):
        check_slurm((2, 4), "", {"PATH": str(tmp_path), "SLURM_JOB_ID": "7", "SLURM_NTASKS": "2"})
    check_slurm((1, 2), "", {"PATH": str(tmp_path), "SLURM_JOB_ID": "7", "SLURM_NTASKS": "2"})


def test_the_suite_refuses_slurm_without_srun_before_any_launch(tmp_path):
    proc = run_project(ROOT, tmp_path, "--launcher", "slurm", "--world-sizes", "1",
                       env_extra={"PATH": os.path.dirname(sys.executable)})
    assert proc.returncode == 4 and "srun is not on PATH" in proc.stderr, proc.stdout + proc.stderr
    assert not list(tmp_path.rglob("metrics_*.json"))
