"""The gate's calibration (selected with --gate-calibration K): its false-alarm rate, inconclusive rate and
power at 5, 10 and 20 % slowdowns, measured by whole sessions on this machine and saved like any run."""
import json
from pathlib import Path

import pytest

from benchmarks.calibration import calibrate, calibrate_ab, table

pytestmark = pytest.mark.gate_calibration


def test_gate_calibration(benchmark, request, suite_options, tmp_path_factory):
    rounds = request.config.getoption("lanebench_calibration")
    if rounds is None:
        pytest.skip("selected with --gate-calibration K")
    if rounds < 1:
        raise pytest.UsageError(f"--gate-calibration needs at least 1 round, got {rounds}")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    note = (lambda text: reporter.write_line(text)) if reporter else print
    work = tmp_path_factory.mktemp("calibration")
    out = Path(suite_options.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "gate_calibration.json"       # rewritten after every session: a stopped run keeps its data
    result = benchmark.pedantic(lambda: calibrate(suite_options, rounds, work, note, progress_file=saved),
                                rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    saved.write_text(json.dumps(result, indent=1))
    note("each session against its own round's baseline:")
    for line in table(result):
        note(line)
    note("every comparison session against the baselines of the other rounds:")
    for line in table(result, "cross"):
        note(line)
    assert all(row["runs"] > 0 for row in result["kinds"].values())


def test_gate_calibration_ab(benchmark, request, suite_options, tmp_path_factory):
    runs = request.config.getoption("lanebench_calibration_ab")
    if runs is None:
        pytest.skip("selected with --gate-calibration-ab K")
    if runs < 1:
        raise pytest.UsageError(f"--gate-calibration-ab needs at least 1 run, got {runs}")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    note = (lambda text: reporter.write_line(text)) if reporter else print
    out = Path(suite_options.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "gate_calibration_ab.json"    # rewritten after every session: a stopped run keeps its data
    result = benchmark.pedantic(lambda: calibrate_ab(suite_options, runs, tmp_path_factory.mktemp("ab"), note,
                                                     progress_file=saved), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    saved.write_text(json.dumps(result, indent=1))
    for line in table(result):
        note(line)
    assert all(row["runs"] > 0 for row in result["kinds"].values())
