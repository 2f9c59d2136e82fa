"""Helpers of the end-to-end suite tests: run the suite in its own pytest session and read its summary."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def clean_env() -> dict[str, str]:
    """Without the xdist worker variables of this test session, which would disable pytest-benchmark."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}


def run_project(project: Path, tmp: Path, *args: str, timeout: float = 600,
                env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`pytest benchmarks/` of the code in ``project``, storage and results under ``tmp``."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "-q",
         f"--benchmark-storage=file://{tmp / 'storage'}", "--results-dir", str(tmp / "results"), *args],
        cwd=project, capture_output=True, text=True, timeout=timeout, env={**clean_env(), **(env_extra or {})})


def gate_lines(stdout: str) -> list[str]:
    """The gate's verdict lines in the terminal summary (not its notes about extra launches)."""
    return [line.strip() for line in stdout.splitlines() if line.strip().startswith("world size ")
            and "_ratio" in line and " p=" in line and " -> " in line]


GITHUB_WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"


def workflow_step(job: str, step_id: str, path: Path = GITHUB_WORKFLOW) -> tuple[str, dict[str, str]]:
    """(the step's run script, the workflow's env) of one step of an example workflow."""
    import yaml

    workflow = yaml.safe_load(path.read_text())
    (step,) = [step for step in workflow["jobs"][job]["steps"] if step.get("id") == step_id]
    return step["run"], {key: str(value) for key, value in workflow.get("env", {}).items()}


def run_workflow_step(repo: Path, script: str, env: dict[str, str],
                      timeout: float = 900) -> subprocess.CompletedProcess:
    """The script as GitHub runs a step (bash -e, pipefail), in ``repo``, with this interpreter's .venv."""
    venv = repo / ".venv"
    if not venv.exists():
        venv.symlink_to(sys.prefix, target_is_directory=True)       # the .venv this test session runs in
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=repo,
                          capture_output=True, text=True, timeout=timeout, env={**clean_env(), **env})


def run_ranks(worker: str, store: Path, outputs: list[Path], *args: str, timeout: float = 120) -> list:
    """``worker`` (a Python script) as ranks 0 .. len(outputs) - 1 of one gloo group over the file ``store``; each
    writes JSON to its ``outputs`` path, read back here once all exited cleanly. A hang is a failure after
    ``timeout``: every rank is killed, and the logs say where they were."""
    import json

    procs = [subprocess.Popen([sys.executable, "-c", worker, str(rank), str(store), str(outputs[rank]), *args],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in range(len(outputs))]
    try:
        logs = [proc.communicate(timeout=timeout)[0] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert [proc.returncode for proc in procs] == [0] * len(procs), logs
    return [json.loads(path.read_text()) for path in outputs]
