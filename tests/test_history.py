"""`ddp-lane-bench history` and the gate against the last N runs: trends, change points, bad input."""
import json
import math

import numpy as np
import pytest

from lanemodel.analysis.gate import GateSettings, series_from_benchmarks
from lanemodel.analysis.history import comparable_runs, compare_with_history, detect, load_runs, trends
from lanemodel.console import main

CONFIG = {"cpu_model": "X", "cores_available": 2, "preset": "tiny", "scaling": "strong", "spawn": "fresh",
          "global_batch": 16, "steps": 12, "drop_warmup": 2, "torch": "2.14.1"}
SESSION_SD = 0.03          # run-to-run spread measured between sessions on this machine kind


def write_run(storage, number: int, name: str, factor: float, seed: int, config: dict | None = None,
              launches: int = 8):
    """A saved run whose sessions drift (SESSION_SD) and whose launches scatter (2 %); ws2 = 1.5 x ws1."""
    rng = np.random.default_rng(seed)
    session = math.exp(SESSION_SD * rng.standard_normal())
    benchmarks = [{"name": f"test_ddp_scaling[tuned-ws{ws}]", "extra_info": {
        "world_size": ws, "threads": "tuned", "global_batch_size": 16,
        "step_times": [[median * factor * session * math.exp(0.02 * rng.standard_normal())] * 10
                       for _ in range(launches)]}} for ws, median in ((1, 0.2), (2, 0.3))]
    path = storage / "Linux-CPython-3.11-64bit" / f"{number:04d}_{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmarks": benchmarks, "scaling": {"schema_version": 2,
                                                                      "config": config or CONFIG}}))
    return path


def history(storage, factors: list[float], seed: int = 0):
    for i, factor in enumerate(factors):
        write_run(storage, i + 1, "main", factor, seed * 100 + i)


def test_runs_are_read_oldest_first_and_other_files_are_named(tmp_path):
    history(tmp_path, [1.0] * 3)
    (tmp_path / "0009_other.json").write_text('{"benchmarks": []}')
    runs, skipped = load_runs(tmp_path)
    assert [r.run_id for r in runs] == ["0001_main", "0002_main", "0003_main"]
    assert len(skipped) == 1 and "0009_other.json has no 'scaling' section" in skipped[0]


def test_runs_from_another_configuration_are_left_out_naming_the_difference(tmp_path):
    history(tmp_path, [1.0] * 3)
    write_run(tmp_path, 4, "big", 1.0, 9, {**CONFIG, "global_batch": 32})
    runs, _ = load_runs(tmp_path)
    kept, notes = comparable_runs(runs, CONFIG)
    assert len(kept) == 3 and notes == ["0004_big not comparable: global_batch: baseline 32, current 16"]


def test_a_slowdown_in_the_last_runs_is_one_change_point_at_the_first_slow_run(tmp_path):
    """8 runs, the last 3 15 % slower, runs drifting by 3 %: in 30 seeded histories the shift is found at run
    6 in most step-time series, nowhere far from it, and never in the efficiency (the slowdown is uniform)."""
    at_first_slow, near, elsewhere = 0, 0, 0
    for seed in range(30):
        history(tmp_path / str(seed), [1.0] * 5 + [1.15] * 3, seed)
        for c in detect(trends(load_runs(tmp_path / str(seed))[0])):
            assert c.metric == "step_time_ratio" and 1.05 < c.ratio < 1.3, (seed, c)
            at_first_slow += c.run_id == "0006_main"
            near += c.run_id in ("0005_main", "0007_main")
            elsewhere += c.run_id not in ("0005_main", "0006_main", "0007_main")
    assert at_first_slow >= 0.7 * 60 and near <= 6 and elsewhere <= 2, (at_first_slow, near, elsewhere)


def test_a_steady_history_rarely_has_a_change_point(tmp_path):
    false = 0
    for seed in range(30):
        history(tmp_path / str(seed), [1.0] * 10, seed)
        false += bool(detect(trends(load_runs(tmp_path / str(seed))[0])))
    assert false <= 3       # 3 series per history, each tested at alpha 0.05


def test_the_gate_against_history_uses_the_run_to_run_spread(tmp_path):
    history(tmp_path, [1.0] * 6)
    runs, _ = load_runs(tmp_path)
    settings = GateSettings()
    same = series_from_benchmarks(json.loads(write_run(tmp_path / "x", 1, "now", 1.0, 77).read_text())["benchmarks"])
    slow = series_from_benchmarks(json.loads(write_run(tmp_path / "y", 1, "now", 1.5, 78).read_text())["benchmarks"])
    assert not compare_with_history(same, runs, settings).regressed
    result = compare_with_history(slow, runs, settings)
    steps = [v for v in result.verdicts if v.metric == "step_time_ratio"]
    assert all(v.verdict == "regressed" and 1.3 < v.ratio < 1.7 for v in steps)
    assert all(v.launches == (8, 6) for v in steps)
    efficiency = [v for v in result.verdicts if v.metric == "efficiency_ratio"]
    assert len(efficiency) == 1 and efficiency[0].verdict != "regressed"
    assert efficiency[0].baseline_value == pytest.approx(0.2 / 0.3 / 2, rel=0.05)


def test_history_command_prints_json_with_the_change_point_and_draws_the_plots(tmp_path, capsys):
    history(tmp_path / "storage", [1.0] * 5 + [1.15] * 3, 3)
    plots = tmp_path / "plots"
    assert main(["history", "--storage", str(tmp_path / "storage"), "--json", "--plots", str(plots)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runs"] == [f"{i:04d}_main" for i in range(1, 9)]
    assert {(c["run"], c["world_size"], c["metric"]) for c in out["change_points"]} == {
        ("0006_main", 1, "step_time_ratio"), ("0006_main", 2, "step_time_ratio")}
    assert all(c["ratio"] > 1.08 and c["p_value"] < 0.05 for c in out["change_points"])
    step = next(s for s in out["series"] if s["metric"] == "step_time_ratio" and s["world_size"] == 1)
    assert len(step["points"]) == 8 and all(p["low"] <= p["value"] <= p["high"] for p in step["points"])
    for path in out["plots"].values():
        assert (plots / path.split("/")[-1]).stat().st_size > 5000


def test_history_command_text_names_the_change_point(tmp_path, capsys):
    history(tmp_path, [1.0] * 5 + [1.15] * 3, 4)
    assert main(["history", "--storage", str(tmp_path), "--plots", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    assert "8 comparable saved runs" in out
    assert "change point at 0006_main: world size 1 (tuned) median step time s x1." in out


@pytest.mark.parametrize("setup, message", [
    ("missing", "is not a directory"),
    ("empty", "no saved run of this suite"),
    ("foreign", "no saved run of this suite"),
])
def test_history_bad_storage_exits_2_and_writes_nothing(tmp_path, capsys, setup, message):
    storage = tmp_path / "storage"
    if setup != "missing":
        storage.mkdir()
    if setup == "foreign":
        (storage / "0001_x.json").write_text("{not json")
    assert main(["history", "--storage", str(storage), "--plots", str(tmp_path / "plots")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "plots").exists()
