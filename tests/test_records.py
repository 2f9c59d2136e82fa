"""The typed record model: kept steps split once, files round-trip, other versions refused by name."""
import json

import pytest
from test_breakdown import make_doc, make_raw

from lanemodel.records import (
    SCHEMA_VERSION,
    Launch,
    RunConfig,
    SchemaError,
    by_policy,
    load_launch,
    load_results_dir,
    save_launch,
)

RANKS = [[{"step_time": 2.0}, {"step_time": 2.5}], [{"step_time": 1.0}, {"step_time": 1.2}],
         [{"step_time": 0.9}, {"step_time": 0.8}]]


def test_kept_steps_are_split_from_warmup_once_and_a_step_time_is_the_slowest_ranks():
    launch = make_doc(RANKS, warmup=1)
    assert launch.run_step_times == {0: 2.5, 1: 1.2, 2: 0.9}
    assert launch.kept_steps == (1, 2) and launch.kept_step_times == (1.2, 0.9)
    assert sorted(launch.kept_records_by_step) == [1, 2]
    assert [(r.step, r.rank) for r in launch.kept_records] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert launch.world_size == 2 and launch.policy == "tuned" and launch.global_batch_size == 8


def test_a_launch_round_trips_through_its_metrics_file(tmp_path):
    launch = make_doc(RANKS, warmup=1)
    path = save_launch(launch, tmp_path / "metrics_tuned_ws2_launch0.json")
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    again = load_launch(path)
    assert again.to_dict() == launch.to_dict() and again.kept_step_times == launch.kept_step_times


def test_files_of_the_layout_before_versions_still_load(tmp_path):
    raw = make_raw(RANKS, warmup=1)
    assert "schema_version" not in raw
    (tmp_path / "metrics_old.json").write_text(json.dumps(raw))
    assert load_launch(tmp_path / "metrics_old.json").schema_version == 1


@pytest.mark.parametrize("change, message", [
    ({"schema_version": 7}, "schema version 7 is not one this version reads"),
    ({"records": [{"step": 0}]}, "step record lacks"),
])
def test_unreadable_metrics_files_are_refused_naming_the_file(tmp_path, change, message):
    path = tmp_path / "metrics_bad.json"
    path.write_text(json.dumps({**make_raw(RANKS), **change}))
    with pytest.raises(SchemaError, match=f"metrics file {path}: .*{message}"):
        load_launch(path)


def test_missing_field_and_bad_json_are_named(tmp_path):
    raw = make_raw(RANKS)
    del raw["config"]
    path = tmp_path / "metrics_x.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(SchemaError, match=f"metrics file {path}: missing field 'config'"):
        load_launch(path)
    path.write_text("{")
    with pytest.raises(SchemaError, match="is not readable JSON"):
        load_launch(path)


def test_a_results_directory_loads_grouped_by_policy_and_world_size(tmp_path):
    for index in range(2):
        save_launch(make_doc(RANKS, warmup=1), tmp_path / f"metrics_tuned_ws2_launch{index}.json")
    save_launch(make_doc(RANKS, warmup=1), tmp_path / "metrics_tuned_ws2_warmup.json")   # never in the statistics
    series = load_results_dir(tmp_path)
    assert list(series) == [("tuned", 2)] and len(series[("tuned", 2)]) == 2
    with pytest.raises(SchemaError, match="results directory .*plots does not exist"):
        load_results_dir(tmp_path / "plots")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SchemaError, match="holds no metrics_"):
        load_results_dir(tmp_path / "empty")


def test_failed_launches_and_launches_without_kept_steps_are_left_out_of_the_statistics():
    good, failed = make_doc(RANKS, warmup=1), Launch.from_dict({**make_raw(RANKS), "error": "rank 1 died"})
    empty = make_doc(RANKS[:1], warmup=1)
    assert by_policy({("tuned", 2): [good, failed, empty]}) == {"tuned": {2: [good]}}
    assert by_policy({("tuned", 2): [failed]}) == {}


def test_runs_of_different_workloads_are_not_comparable_and_a_field_older_runs_lack_is_not_held_against_them():
    lane = RunConfig.from_json({"workload": "lanemodel.training.lane:LaneDetection", "parameters": 12_664_680,
                                "parameter_shapes": "a1", "cpu_model": "x", "preset": "tiny"})
    wider = RunConfig.from_json({"workload": "mymodel:MyWorkload", "parameters": 4_000_000,
                                 "parameter_shapes": "b2", "cpu_model": "x", "preset": "tiny"})
    assert [name for name, *_ in lane.differences(wider)] == ["workload", "parameters", "parameter_shapes"]
    older = RunConfig.from_json({"cpu_model": "x", "preset": "tiny"})       # saved before workloads were recorded
    assert lane.differences(older) == []                                     # the lane detector, its size unknown
    assert [name for name, *_ in older.differences(wider)] == ["workload"]
