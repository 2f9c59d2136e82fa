"""The lever study (``pytest benchmarks/ --levers SPEC``): what to change, and whether it trains the same.

Each round of ``test_levers`` is one block at its world size: the default and every value once, from the
block's seed, in a drawn order (``lanemodel.session.levers``). ``test_lever_recommended`` then measures the values
that were faster and trained the same, combined, against the default in blocks of its own. A value whose
launches failed fails its world size's item, with the errors; the other values' rows are kept.
"""
import pytest


@pytest.mark.lever_study
def test_levers(benchmark, lever_study, suite_options, lever_world_size):
    benchmark.pedantic(lambda: lever_study.run_values(lever_world_size), rounds=suite_options.levers.blocks,
                       iterations=1, warmup_rounds=0)
    found = lever_study.world_size_json(lever_world_size)
    benchmark.extra_info.update(lever_world_size=lever_world_size, lever_rows=found["rows"],
                                lever_default=found["default"])
    errors = found["default_errors"] + [f"{row['label']}, {error}" for row in found["rows"] for error in row["errors"]]
    if errors:
        pytest.fail("launches failed (their rows are in the report):\n" + "\n".join(errors), pytrace=False)


@pytest.mark.lever_study
def test_lever_recommended(benchmark, lever_study, suite_options, lever_world_size):
    combination = lever_study.recommendation(lever_world_size)
    if not combination.values:
        pytest.skip(f"no value was faster and trained the same at world size {lever_world_size}: the default stays")
    benchmark.pedantic(lambda: lever_study.run_recommended(lever_world_size, combination),
                       rounds=suite_options.levers.blocks, iterations=1, warmup_rounds=0)
    found = lever_study.world_size_json(lever_world_size)["recommended"]
    benchmark.extra_info.update(lever_world_size=lever_world_size, lever_recommended=found)
    if found["errors"]:
        pytest.fail("launches failed:\n" + "\n".join(found["errors"]), pytrace=False)
