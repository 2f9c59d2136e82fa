"""Helpers of the end-to-end suite tests: run the suite in its own pytest session and read its summary."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def clean_env() -> dict[str, str]:
    """Without the xdist worker variables of this test session, which would disable pytest-benchmark."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}


def run_project(project: Path, tmp: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`pytest benchmarks/` of the code in ``project``, storage and results under ``tmp``."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "-q",
         f"--benchmark-storage=file://{tmp / 'storage'}", "--results-dir", str(tmp / "results"), *args],
        cwd=project, capture_output=True, text=True, timeout=timeout, env=clean_env())


def gate_lines(stdout: str) -> list[str]:
    """The gate's verdict lines in the terminal summary (not its notes about extra launches)."""
    return [line.strip() for line in stdout.splitlines() if line.strip().startswith("world size ")
            and "_ratio" in line and " p=" in line and " -> " in line]
