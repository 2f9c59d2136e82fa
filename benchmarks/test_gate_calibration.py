"""The gate's calibration (selected with --gate-calibration K): its false-alarm rate, inconclusive rate and
power at 5, 10 and 20 % slowdowns, measured by whole sessions on this machine and saved like any run."""
import json
from pathlib import Path

import pytest

from benchmarks.calibration import calibrate, calibrate_ab, table

pytestmark = pytest.mark.gate_calibration


def calibration_run(request, suite_options, option: str, flag: str, file_name: str, measure) -> tuple[dict, object]:
    """Run ``measure(count, note, progress_file)`` once as the benchmark, saving its result under ``file_name``
    (also after every session, so a stopped calibration keeps its data); returns (result, note)."""
    count = request.config.getoption(option)
    if count is None:
        pytest.skip(f"selected with {flag} K")
    if count < 1:
        raise pytest.UsageError(f"{flag} needs at least 1, got {count}")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    note = (lambda text: reporter.write_line(text)) if reporter else print
    out = Path(suite_options.outputs.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / file_name
    benchmark = request.getfixturevalue("benchmark")
    result = benchmark.pedantic(lambda: measure(count, note, saved), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    saved.write_text(json.dumps(result, indent=1))
    return result, note


def test_gate_calibration(request, suite_options, tmp_path_factory):
    result, note = calibration_run(
        request, suite_options, "lanebench_calibration", "--gate-calibration", "gate_calibration.json",
        lambda rounds, note, saved: calibrate(suite_options, rounds, tmp_path_factory.mktemp("calibration"), note,
                                              progress_file=saved))
    note("each session against its own round's baseline:")
    for line in table(result):
        note(line)
    note("every comparison session against the baselines of the other rounds:")
    for line in table(result, "cross"):
        note(line)
    assert all(row["runs"] > 0 for row in result["kinds"].values())


def test_gate_calibration_ab(request, suite_options, tmp_path_factory):
    result, note = calibration_run(
        request, suite_options, "lanebench_calibration_ab", "--gate-calibration-ab", "gate_calibration_ab.json",
        lambda runs, note, saved: calibrate_ab(suite_options, runs, tmp_path_factory.mktemp("ab"), note,
                                               progress_file=saved))
    for line in table(result):
        note(line)
    assert all(row["runs"] > 0 for row in result["kinds"].values())
