import json

import numpy as np
import pytest

from benchmarks.gate import BaselineError, check_comparable, compare, load_baseline

CONFIG = {"cpu_model": "X", "cores_available": 2, "preset": "tiny", "scaling": "strong", "spawn": "fresh",
          "global_batch": 4, "steps": 6, "drop_warmup": 2, "torch": "2.14.1"}


def bench(ws: int, launches: list[list[float]], batch: int = 4) -> dict:
    return {"name": f"test_ddp_scaling[tuned-ws{ws}]", "extra_info": {
        "world_size": ws, "threads": "tuned", "global_batch_size": batch, "step_times": launches}}


def noisy(median: float, seed: int, launches: int = 3, steps: int = 8) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [list(median * (1 + 0.02 * rng.standard_normal(steps))) for _ in range(launches)]


def run(ws1: float, ws2: float, seed: int) -> list[dict]:
    return [bench(1, noisy(ws1, seed)), bench(2, noisy(ws2, seed + 1))]


def test_identical_runs_pass_and_a_slower_world_size_is_named():
    baseline = {"benchmarks": run(0.2, 0.3, 0)}
    same = compare(run(0.2, 0.3, 10), baseline, max_slowdown=1.10, max_efficiency_drop=0.10)
    assert {(v.world_size, v.metric, v.verdict) for v in same} == {
        (1, "step_time_ratio", "pass"), (2, "step_time_ratio", "pass"), (2, "efficiency_ratio", "pass")}
    slower = compare(run(0.2, 0.45, 10), baseline, max_slowdown=1.10, max_efficiency_drop=0.10)
    verdicts = {(v.world_size, v.metric): v for v in slower}
    assert verdicts[(1, "step_time_ratio")].verdict == "pass"
    assert verdicts[(2, "step_time_ratio")].verdict == "regressed"
    assert verdicts[(2, "step_time_ratio")].ratio.point == pytest.approx(1.5, rel=0.03)
    eff = verdicts[(2, "efficiency_ratio")]
    assert eff.verdict == "regressed"
    assert eff.baseline_value == pytest.approx(0.2 / 0.3 / 2, rel=0.03)
    assert eff.current_value == pytest.approx(0.2 / 0.45 / 2, rel=0.03)
    assert "world size 2 (tuned): step_time_ratio" in verdicts[(2, "step_time_ratio")].describe("base.json")


def test_launches_that_disagree_make_the_verdict_inconclusive_not_regressed():
    # One launch as fast as the baseline, one a third slower: the pooled median is 1.167x the baseline,
    # but resampling launches gives anything from 1.0x to 1.333x, which straddles the 1.10 limit.
    baseline = {"benchmarks": [bench(2, [[0.3] * 8] * 3)]}
    (verdict,) = compare([bench(2, [[0.3] * 8, [0.4] * 8])], baseline, max_slowdown=1.10, max_efficiency_drop=0.10)
    assert verdict.ratio.point == pytest.approx(0.35 / 0.3)
    assert verdict.ratio.low == pytest.approx(1.0) and verdict.ratio.high == pytest.approx(0.4 / 0.3)
    assert verdict.verdict == "inconclusive"


def test_different_configuration_is_refused_with_every_difference():
    baseline = {"benchmarks": [], "scaling": {"config": CONFIG}}
    check_comparable(baseline, dict(CONFIG), "base.json")
    with pytest.raises(BaselineError) as info:
        check_comparable(baseline, {**CONFIG, "preset": "small", "cores_available": 4}, "base.json")
    message = str(info.value)
    assert "baseline base.json was measured under a different configuration" in message
    assert "cores_available: baseline 2, current 4" in message and "preset: baseline 'tiny', current 'small'" in message


def test_load_baseline_errors_name_the_file(tmp_path):
    path = tmp_path / "b.json"
    with pytest.raises(BaselineError, match=f"baseline file {path} does not exist"):
        load_baseline(path)
    path.write_text(json.dumps({"benchmarks": [], "scaling": {"config": CONFIG}}))
    assert load_baseline(path)["scaling"]["config"] == CONFIG
