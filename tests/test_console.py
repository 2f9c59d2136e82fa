"""`ddp-lane-bench compare`: the gate over saved runs without pytest, and its exit codes."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from lanemodel.console import main

CONFIG = {"cpu_model": "X", "cores_available": 2, "preset": "tiny", "scaling": "strong", "spawn": "fresh",
          "global_batch": 16, "steps": 12, "drop_warmup": 2, "torch": "2.14.1"}


def saved_run(path, ws1: float, ws2: float, seed: int, config: dict | None = None):
    rng = np.random.default_rng(seed)
    benchmarks = [{"name": f"test_ddp_scaling[tuned-ws{ws}]", "extra_info": {
        "world_size": ws, "threads": "tuned", "global_batch_size": 16,
        "step_times": [[median * math.exp(0.01 * rng.standard_normal())] * 10 for _ in range(8)]}}
        for ws, median in ((1, ws1), (2, ws2))]
    path.write_text(json.dumps({"benchmarks": benchmarks, "scaling": {"schema_version": 2,
                                                                      "config": config or CONFIG}}))
    return path


def test_no_regression_exits_0_and_prints_every_verdict(tmp_path, capsys):
    base, cur = saved_run(tmp_path / "a.json", 0.2, 0.3, 0), saved_run(tmp_path / "b.json", 0.2, 0.3, 1)
    assert main(["compare", str(base), str(cur)]) == 0
    out = capsys.readouterr().out
    assert out.count("-> PASS") == 3 and out.strip().endswith("no regression")


def test_a_regression_exits_1_naming_the_world_size(tmp_path, capsys):
    base, cur = saved_run(tmp_path / "a.json", 0.2, 0.3, 0), saved_run(tmp_path / "b.json", 0.2, 0.6, 1)
    assert main(["compare", str(base), str(cur)]) == 1
    out = capsys.readouterr().out
    assert "world size 2 (tuned): step_time_ratio 2.0" in out and "-> REGRESSED" in out
    ws1 = next(line for line in out.splitlines() if "world size 1 (tuned): step_time_ratio" in line)
    assert "-> PASS" in ws1


def test_runs_are_found_by_id_or_name_in_a_storage(tmp_path, capsys):
    storage = tmp_path / "storage" / "Linux-CPython-3.11-64bit"
    storage.mkdir(parents=True)
    saved_run(storage / "0001_main.json", 0.2, 0.3, 0)
    saved_run(storage / "0002_branch.json", 0.2, 0.3, 1)
    assert main(["compare", "main", "0002", "--storage", str(tmp_path / "storage")]) == 0
    assert "0002_branch.json against" in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    (None, "bad.json does not exist"),
    ("{not json", "is not readable JSON"),
    ('{"benchmarks": []}', "has no 'scaling' section"),
    ("[1, 2]", "is not a pytest-benchmark file"),
])
def test_bad_input_exits_2_naming_it(tmp_path, capsys, content, message):
    base = saved_run(tmp_path / "a.json", 0.2, 0.3, 0)
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    assert main(["compare", str(base), str(bad), "--storage", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert message in err and "bad" in err


def test_an_unknown_run_name_exits_2(tmp_path, capsys):
    assert main(["compare", "nosuch", "other", "--storage", str(tmp_path)]) == 2
    assert "'nosuch' is neither a file nor a saved run in" in capsys.readouterr().err


def test_a_limit_outside_its_range_exits_2(tmp_path, capsys):
    base = saved_run(tmp_path / "a.json", 0.2, 0.3, 0)
    assert main(["compare", str(base), str(base), "--scaling-max-efficiency-drop", "1.5"]) == 2
    assert "--scaling-max-efficiency-drop must be" in capsys.readouterr().err


def test_another_configuration_exits_4_listing_every_difference(tmp_path, capsys):
    base = saved_run(tmp_path / "a.json", 0.2, 0.3, 0)
    cur = saved_run(tmp_path / "b.json", 0.2, 0.3, 1, {**CONFIG, "preset": "small", "steps": 20})
    assert main(["compare", str(base), str(cur)]) == 4
    err = capsys.readouterr().err
    assert "preset: baseline 'tiny', current 'small'" in err and "steps: baseline 12, current 20" in err


def test_the_console_command_is_installed(tmp_path):
    base = saved_run(tmp_path / "a.json", 0.2, 0.3, 0)
    proc = subprocess.run([sys.executable, "-m", "lanemodel.console", "compare", str(base), str(base)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "no regression" in proc.stdout
    assert "torch" not in proc.stderr


def test_report_rebuilds_the_report_and_plots_from_a_results_directory(tmp_path, capsys):
    from test_report import docs as report_docs  # launches of two policies at 1, 2 and 4 ranks

    from lanemodel.records import launch_name, metrics_path, save_launch

    series = report_docs.__wrapped__()
    for (policy, ws), launches in series.items():
        for index, launch in enumerate(launches):
            save_launch(launch, metrics_path(tmp_path, launch_name(policy, ws, index)))
    assert main(["report", str(tmp_path)]) == 0
    report = (tmp_path / "REPORT.md").read_text()
    assert "## Scaling per thread policy" in report and "### `naive` threads" in report
    assert (tmp_path / "plots" / "tuned" / "speedup_vs_processes.png").stat().st_size > 5000
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # the probes of the directory are read too: the all-reduce microbenchmark, rank-alone launches, bandwidth
    probes = tmp_path / "probes"
    probes.mkdir()
    for ws in (2, 4):
        alone = series[("tuned", ws)][0]
        alone.config["probe"] = {"kind": "rank alone", "for_world_size": ws}
        save_launch(alone, probes / f"metrics_tuned_alone_ws{ws}.json")
        (probes / f"allreduce_tuned_ws{ws}.json").write_text(json.dumps(
            {"gradient": {"wall": 0.1, "cpu": 0.02}, "buckets": [1000], "nodes": 1, "link_gbit": None}))
    assert main(["report", str(tmp_path)]) == 0
    report = (tmp_path / "REPORT.md").read_text()
    batches = [line for line in report.splitlines() if line.startswith("| smaller per-process batches")]
    assert any("a rank alone at 2 processes' batch" in row for row in batches)   # tuned had probes, naive not
    (probes / "bandwidth.json").write_text("{")
    assert main(["report", str(tmp_path)]) == 2
    assert "bandwidth.json is not readable JSON" in capsys.readouterr().err
