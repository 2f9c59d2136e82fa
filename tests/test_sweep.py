"""run_sweep end to end: files per world size, a failure that loses nothing, and no process left behind."""
import json
import os
from pathlib import Path

import pytest

from lanemodel.engine.progress import Progress
from lanemodel.engine.sweep import SweepError, run_sweep
from lanemodel.records import load_launch
from lanemodel.training.config import TrainConfig

pytestmark = pytest.mark.engine


def descendants(pid: int) -> list[int]:
    """Live (non-zombie) processes below ``pid``, read from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("spawn", ["forkserver", "fresh"])
def test_a_killed_rank_fails_the_sweep_naming_the_world_size_and_nothing_outlives_it(synth_data, tmp_path, spawn):
    cfg = TrainConfig(data_dir=str(synth_data), steps=4, global_batch=4)
    lines = []
    with pytest.raises(SweepError, match="world size 2 failed: rank 1 was killed by signal SIGKILL") as info:
        run_sweep(cfg, [1, 2], "tuned", tmp_path, timeout_s=60, drop_warmup=1, spawn=spawn,
                  progress=Progress(4, 2, lines.append, live=False), fault="sigkill:1:2")
    # Checked right at return: ranks, fork server and resource tracker are all gone.
    assert descendants(os.getpid()) == []
    assert not any(alive(pid) for pid in info.value.partial.launch["pids"])
    # Nothing measured is lost: both world sizes' metrics and the summary are on disk.
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["world_size"] for row in summary] == [1, 2]
    assert summary[0]["error"] is None and "rank 1 was killed" in summary[1]["error"]
    ws1, ws2 = load_launch(tmp_path / "metrics_ws1.json"), load_launch(tmp_path / "metrics_ws2.json")
    assert ws1.kept_steps == (1, 2, 3) and ws2.kept_steps == (1,)
    assert any(line.startswith("world size 1: launch 1 of 1, step 4 of 4") for line in lines)


def test_a_sweep_reports_progress_and_leaves_no_process(synth_data, tmp_path):
    cfg = TrainConfig(data_dir=str(synth_data), steps=3, global_batch=4)
    lines = []
    summary = run_sweep(cfg, [1, 2], "tuned", tmp_path, timeout_s=60, drop_warmup=1, spawn="forkserver",
                        progress=Progress(3, 2, lines.append, live=False))
    assert descendants(os.getpid()) == []
    assert [row["steps_kept"] for row in summary] == [2, 2]
    finished = [line for line in lines if "step 3 of 3" in line]
    assert [line.split(":")[0] for line in finished] == ["world size 1", "world size 2"]
    assert "launch 2 of 2" in finished[1]


def test_a_sweep_that_cannot_measure_anything_is_refused_before_launching(synth_data, tmp_path):
    cfg = TrainConfig(data_dir=str(synth_data), steps=2, global_batch=4)
    with pytest.raises(ValueError, match="--steps 2 with --drop-warmup 2 leaves no step to measure"):
        run_sweep(cfg, [1], "tuned", tmp_path, timeout_s=60, drop_warmup=2)
    assert not list(tmp_path.iterdir())


def test_a_terminated_sweep_stops_its_ranks_and_says_so(synth_data, tmp_path):
    """SIGTERM (a CI timeout, `kill`) must not leave rank processes behind."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "lanemodel", "sweep", "--data", str(synth_data),
                             "--results-dir", str(tmp_path), "--world-sizes", "2", "--steps", "500",
                             "--global-batch", "4", "--spawn", "fresh"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = tmp_path / "runs" / "tuned_ws2_launch0"        # the session's first launch at world size 2
    records = run / "rank1.jsonl"
    deadline = time.monotonic() + 120
    while not (records.exists() and records.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert records.exists(), "the ranks never started"
    pids = [json.loads((run / f"rank{r}.meta.json").read_text())["pid"] for r in (0, 1)]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted: terminated by signal SIGTERM" in err
    assert not any(alive(pid) for pid in pids)
