"""A new user's first hour, as they would live it: a fresh virtual environment outside this checkout, ``pip
install`` of the checkout, a scratch git repository holding only one example workload and no test file, the
sweep at world sizes 1 and 2, then a commit that makes the model 4x wider gated against its parent (exit 1, a
failed JUnit gate item), and the lever study on the same workload."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from suite_helpers import ROOT, clean_env
from test_suite_ab import junit_cases

pytestmark = pytest.mark.slow

EXAMPLES = ROOT / "examples" / "workloads"
WIDTHS = {"token_transformer": ("TokenTransformer", "D_MODEL"), "image_classifier": ("ImageClassifier", "WIDTH")}
SMALL = ["--world-sizes", "1,2", "--steps", "6", "--warmup-launches", "0", "--probes", "0"]


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory) -> Path:
    """A virtual environment of its own with this checkout installed as a user installs it (not editable), with
    this project's pinned torch (constraints.txt) so that pip takes it from this machine's disk."""
    venv = tmp_path_factory.mktemp("user") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run([venv / "bin" / "pip", "install", "--quiet", "-c", ROOT / "constraints.txt", str(ROOT)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv / "bin" / "python"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=user@example.com", "-c", "user.name=user", *args],
                   check=True, capture_output=True, timeout=60)


def scratch_repo(parent: Path, module: str) -> Path:
    repo = parent / f"repo-{module}"
    repo.mkdir()
    shutil.copy(EXAMPLES / f"{module}.py", repo)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "a model")
    return repo


def user_pytest(python: Path, repo: Path, *args: str) -> subprocess.CompletedProcess:
    """pytest as the user runs it in their repository: nothing of this checkout on the path."""
    env = {k: v for k, v in clean_env().items() if k != "PYTHONPATH"}
    return subprocess.run([str(python), "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=repo,
                          capture_output=True, text=True, timeout=900, env=env)


@pytest.mark.parametrize("module", sorted(WIDTHS))
def test_a_new_user_measures_and_gates_an_example_workload(fresh_python, tmp_path, module):
    attr, width = WIDTHS[module]
    spec = f"{module}:{attr}"
    repo = scratch_repo(tmp_path, module)
    base = user_pytest(fresh_python, repo, "--workload", spec, *SMALL, "--rounds", "2", "--benchmark-save=base")
    assert base.returncode == 0, base.stdout[-3000:] + base.stderr[-3000:]
    report = (repo / "results" / "REPORT.md").read_text()
    assert f"(`{spec}`)" in report and "lane detector" not in report.splitlines()[0]
    assert "test_ddp_scaling[tuned-ws2]" in base.stdout and list((repo / ".benchmarks").rglob("*_base.json"))
    assert (repo / "results" / "plots" / "tuned" / "speedup_vs_processes.png").stat().st_size > 10_000

    source = repo / f"{module}.py"
    text, wider = re.subn(rf"^{width} = (\d+)$", lambda m: f"{width} = {4 * int(m.group(1))}",
                          source.read_text(), flags=re.M)
    assert wider == 1
    source.write_text(text)
    git(repo, "commit", "-qam", "4x wider")
    gated = user_pytest(fresh_python, repo, "--workload", spec, *SMALL, "--scaling-ab", "HEAD~1",
                        "--scaling-ab-rounds", "3", "--junitxml", "j.xml")
    assert gated.returncode == 1, gated.stdout[-3000:] + gated.stderr[-3000:]
    cases = junit_cases(repo / "j.xml")
    assert cases["test_scaling_gate[tuned-ws2-step_time]"] == "failure", cases


def test_the_lever_study_runs_on_a_workload_of_ones_own(fresh_python, tmp_path):
    repo = scratch_repo(tmp_path, "token_transformer")
    proc = user_pytest(fresh_python, repo, "--workload", "token_transformer:TokenTransformer", *SMALL,
                       "--levers", "comm_hook=bf16", "--levers-blocks", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = (repo / "results" / "REPORT.md").read_text()
    assert "comm_hook=bf16" in report and "transformer language model" in report
