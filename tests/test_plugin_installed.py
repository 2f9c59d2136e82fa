"""The installed plugin (entry point pytest11) in a directory that is not this repository: inert in a pytest
session that neither names a workload nor runs the suite's items, its flags under the --lanebench- prefix with
the short names as aliases unless another plugin took them, and a broken workload refused with exit 4."""
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
from suite_helpers import clean_env

pytestmark = pytest.mark.skipif(not any(ep.value == "lanemodel.suite.plugin" for ep in entry_points(group="pytest11")),
                                reason="the package is not installed (./run setup installs it)")


def pytest_in(directory, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=directory,
                          capture_output=True, text=True, timeout=300,
                          env={**clean_env(), "PYTHONPATH": str(directory)})


def test_a_session_of_other_tests_is_left_as_it_is(tmp_path):
    (tmp_path / "test_other.py").write_text("def test_other():\n    assert 1 + 1 == 2\n")
    proc = pytest_in(tmp_path)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout
    assert "DDP scaling" not in proc.stdout and "test_ddp_scaling" not in proc.stdout
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == [".benchmarks", "test_other.py"], made      # no results/ (.benchmarks/ is pytest-benchmark's own)


def test_every_flag_has_a_prefixed_name_and_a_taken_short_name_is_left_to_its_owner(tmp_path):
    (tmp_path / "steps_plugin.py").write_text(
        "def pytest_addoption(parser):\n    parser.addoption('--steps', default='theirs')\n")
    helped = pytest_in(tmp_path, "-p", "steps_plugin", "--help").stdout
    assert "--lanebench-world-sizes=LANEBENCH_WORLD_SIZES, --world-sizes" in helped
    assert "--lanebench-ab=LANEBENCH_SCALING_AB, --scaling-ab" in helped
    assert "--lanebench-steps=LANEBENCH_STEPS\n" in helped and "--steps=STEPS" in helped    # theirs


def test_a_workload_that_does_not_import_is_refused_with_exit_4_before_any_launch(tmp_path):
    (tmp_path / "mymodel.py").write_text("import not_installed_anywhere\n")
    proc = pytest_in(tmp_path, "--workload", "mymodel:MyWorkload", "--world-sizes", "1,2")
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "--workload mymodel:MyWorkload: module 'mymodel' does not import" in proc.stderr
    assert "No module named 'not_installed_anywhere'" in proc.stderr and not (tmp_path / "results" / "runs").exists()
