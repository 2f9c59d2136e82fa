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
    (["--world-sizes", "1,1"], "names a world size twice"),
    (["--world-sizes", "1,3", "--global-batch", "8"], "--global-batch 8 does not divide evenly across world size 3"),
    (["--launch-timeout", "0"], "--launch-timeout must be > 0, got 0"),
    (["--launch-timeout", "-5"], "--launch-timeout must be > 0, got -5"),
    (["--preset", "huge"], "--preset: unknown value 'huge'"),
    (["--threads", "many"], "--threads: thread policy must be naive, tuned or a positive integer, got 'many'"),
    (["--threads", "tuned,naive"], "a sweep measures one policy"),
    (["--data", "/nonexistent/tusimple"], "--data /nonexistent/tusimple: no such directory"),
    (["--steps", "2"], "--drop-warmup 2 leaves no step of --steps 2 to measure"),
    (["--steps", "0"], "--steps must be >= 1, got 0"),
    (["--global-batch", "x"], "--global-batch: 'x' is not a whole number"),
    (["--inject-step-slowdown", "-5"], "--inject-step-slowdown must be >= 0"),
    (["--inject-step-slowdown", "fast"], "--inject-step-slowdown: 'fast' is not a number"),
    (["--scaling", "wide"], "--scaling: unknown value 'wide'"),
])
def test_sweep_bad_input_exits_2_before_starting(args, message, tmp_path, capsys, monkeypatch):
    def no_launch(*a, **k):
        raise AssertionError("a rank was launched despite bad input")
    monkeypatch.setattr("lanemodel.engine.sweep.launch_ranks", no_launch)
    code = main(["sweep", "--results-dir", str(tmp_path / "out"), *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_sweep_unwritable_output_dir_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["sweep", "--results-dir", str(blocker / "sub")]) == 2
    assert f"output directory {blocker / 'sub'} is not writable" in capsys.readouterr().err


def test_bad_sweep_input_exits_2_from_the_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lanemodel", "sweep", "--results-dir", str(tmp_path),
                           "--world-sizes", "1,2", "--preset", "tiny", "--steps", "2"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--drop-warmup 2 leaves no step of --steps 2" in proc.stderr
    assert not list(tmp_path.glob("metrics_*.json")) and not (tmp_path / "data").exists()


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


@pytest.mark.parametrize("command", [["sweep", "--help"], ["train", "--help"]])
def test_help_is_printed_whatever_the_help_texts_contain(command, capsys):
    """Help texts with a percent sign ("3 % faster") once broke argparse's --help with a TypeError."""
    with pytest.raises(SystemExit) as info:
        main(command)
    assert info.value.code == 0
    assert "--launcher" in capsys.readouterr().out or command[0] == "train"


def test_the_suite_and_console_helps_print(tmp_path):
    from pathlib import Path

    from lanemodel.console import main as console_main

    with pytest.raises(SystemExit) as info:
        console_main(["compare", "--help"])
    assert info.value.code == 0
    done = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/", "--help", "-p", "no:cacheprovider"],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--scaling-ab" in done.stdout
