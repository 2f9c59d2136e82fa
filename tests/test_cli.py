"""Command-line behaviour: bad input is refused with exit code 2 before any rank starts."""
import json
import subprocess
import sys

import pytest

from lanemodel.cli import main


@pytest.mark.parametrize("args, message", [
    (["--world-sizes", "0"], "0 is not a valid world size"),
    (["--world-sizes", "-2"], "-2 is not a valid world size"),
    (["--world-sizes", "two"], "'two' is not a whole number"),
    (["--world-sizes", ""], "--world-sizes is empty"),
    (["--world-sizes", "1,3", "--batch", "8"], "global batch 8 does not divide evenly across world size 3"),
    (["--timeout", "0"], "--timeout must be > 0 seconds, got 0.0"),
    (["--timeout", "-5"], "--timeout must be > 0 seconds, got -5.0"),
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--threads", "many"], "thread policy must be naive, tuned or a positive integer, got 'many'"),
    (["--data", "/nonexistent/tusimple"], "data directory /nonexistent/tusimple does not exist"),
])
def test_sweep_bad_input_exits_2_before_starting(args, message, tmp_path, capsys, monkeypatch):
    def no_launch(*a, **k):
        raise AssertionError("a rank was launched despite bad input")
    monkeypatch.setattr("lanemodel.sweep.launch_ranks", no_launch)
    code = main(["sweep", "--out", str(tmp_path / "out"), *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_sweep_unwritable_output_dir_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["sweep", "--out", str(blocker / "sub")]) == 2
    assert f"output directory {blocker / 'sub'} is not writable" in capsys.readouterr().err


def test_scaling_mode_is_checked_by_the_parser(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lanemodel", "sweep", "--out", str(tmp_path), "--scaling", "wide"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "invalid choice: 'wide'" in proc.stderr


def test_presets_lists_parameter_counts(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "61,225,640" in out and "58,604,200" in out and "288x800" in out


def test_synth_then_evaluate_ground_truth_against_itself(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--frames", "3", "--seed", "4"]) == 0
    gt = tmp_path / "label_data.json"
    pred = tmp_path / "pred.json"
    pred.write_text("".join(json.dumps({**json.loads(line), "run_time": 5}) + "\n"
                            for line in gt.read_text().splitlines()))
    capsys.readouterr()
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == [{"name": "Accuracy", "value": 1.0, "order": "desc"},
                                {"name": "FP", "value": 0.0, "order": "asc"},
                                {"name": "FN", "value": 0.0, "order": "asc"}]


def test_evaluate_malformed_prediction_exits_2_naming_the_file(tmp_path, capsys, real_labels):
    pred = tmp_path / "pred.json"
    pred.write_text("{not json\n")
    assert main(["evaluate", "--pred", str(pred), "--gt", str(real_labels)]) == 2
    assert str(pred) in capsys.readouterr().err
