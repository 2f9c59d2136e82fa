"""Settings typed by concern: each group checks itself, the whole checks what spans groups, every option lands in
one group; RunConfig is a run's set-up, compared on its comparable fields only."""
import dataclasses

import pytest

from lanemodel.records import RunConfig
from lanemodel.settings import (
    LANE_WORKLOAD,
    OPTIONS,
    LaunchSettings,
    SettingsError,
    SweepSettings,
    WorkloadSettings,
    baseline_quality,
    parse_settings,
)


def test_every_option_lands_in_one_field_of_its_group():
    settings = parse_settings({})
    for option in OPTIONS:
        group = getattr(settings, option.group)
        assert option.key in {spec.name for spec in dataclasses.fields(group)}, option.name
    counted = sum(len(dataclasses.fields(getattr(settings, spec.name))) for spec in dataclasses.fields(SweepSettings))
    assert counted == len(OPTIONS)                  # no field that no option sets


def test_a_group_checks_itself_when_built():
    with pytest.raises(SettingsError, match="--drop-warmup 4 leaves no step of --steps 4"):
        WorkloadSettings(preset="tiny", spec=LANE_WORKLOAD, data="", steps=4, drop_warmup=4, global_batch=16,
                         scaling="strong",
                         inject_comm_delay_ms=0.0, inject_step_slowdown=0.0)
    with pytest.raises(SettingsError, match="--nodes 2 runs one torchrun agent per emulated node"):
        LaunchSettings(world_sizes=(2,), threads=("tuned",), spawn="fresh", launcher="embedded", slurm_partition="",
                       nodes=2, link_gbit=1.0, launch_timeout=60.0)


@pytest.mark.parametrize("raw, message", [
    ({"steps": "3", "drop_warmup": "3"}, "--drop-warmup 3 leaves no step"),
    ({"world_sizes": "2,3", "nodes": "2", "launcher": "torchrun"}, "3 ranks do not split evenly over --nodes 2"),
    ({"rounds": "4", "scaling_max_rounds": "2"}, "--scaling-max-rounds 2 is below --rounds 4"),
    ({"scaling_history": "1"}, "--scaling-history 1: the run-to-run spread needs at least 2"),
    ({"scaling_ab": "HEAD", "spawn": "forkserver"}, "--scaling-ab needs --spawn fresh"),
    ({"scaling_ab": "HEAD", "scaling_baseline": "main"}, "--scaling-ab and --scaling-baseline each name what"),
    ({"levers": "accumulate=2", "scaling_history": "3"}, "leave out --scaling-history"),
])
def test_bad_combinations_are_refused_naming_the_options(raw, message):
    with pytest.raises(SettingsError, match=message):
        parse_settings(raw)


def test_baseline_quality_changes_only_the_plan():
    planned = parse_settings({})
    precise = baseline_quality(planned)
    assert (precise.plan.rounds, precise.plan.max_rounds, precise.plan.session_budget_s, precise.plan.precise) == \
        (10, 20, 0.0, 1)
    assert (precise.workload, precise.launch, precise.gate) == (planned.workload, planned.launch, planned.gate)


def test_a_run_config_round_trips_and_differs_only_on_comparable_fields():
    config = RunConfig(cpu_model="cpu", cores_available=2, torch="2.14.1", preset="tiny", scaling="strong",
                       spawn="fresh", global_batch=16, steps=12, drop_warmup=2, threads=("tuned",), world_sizes=(1, 2))
    assert RunConfig.from_json(config.as_json()) == config
    assert config.as_json()["world_sizes"] == [1, 2]
    slower = dataclasses.replace(config, inject_step_slowdown=10.0, rounds=5, world_sizes=(1,))
    assert config.differences(slower) == []         # a slowdown stands for a code change: still compared
    other = dataclasses.replace(config, cores_available=4, launcher="torchrun")
    assert config.differences(other) == [("cores_available", 2, 4), ("launcher", "embedded", "torchrun")]
    old = {key: value for key, value in config.as_json().items() if key not in ("launcher", "nodes", "slurm_nodes")}
    assert RunConfig.from_json(old).differences(config) == []   # saved before those fields: what it ran with
