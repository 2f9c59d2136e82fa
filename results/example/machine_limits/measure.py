"""The issue's two set-ups, run for real in cgroups made here (root): the sweep under a one-CPU quota and
without one, and the suite in a 3 GiB memory cgroup; what each recorded.

    .venv/bin/python results/example/machine_limits/measure.py > results/example/machine_limits/measured.json
"""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from cgroup_harness import cgroup_oom_kills, limited_cgroup  # noqa: E402

from lanemodel.records import load_launch  # noqa: E402

SWEEP = ["-m", "lanemodel", "sweep", "--world-sizes", "1,2", "--steps", "8", "--drop-warmup", "2"]
SUITE = ["-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "-q", "-rs", "--world-sizes", "1,2,8", "--steps", "6",
         "--rounds", "1", "--probes", "0"]


def sweep(prefix: list[str], out: Path) -> dict:
    subprocess.run([*prefix, *SWEEP, "--results-dir", str(out)], cwd=ROOT, check=True, capture_output=True)
    rows = {}
    for ws in (1, 2):
        launch = load_launch(out / f"metrics_tuned_ws{ws}_launch0.json")
        steps = sorted(launch.kept_step_times)
        rows[ws] = {"median_step_s": round(steps[len(steps) // 2], 3), "cores_available": launch.env["cores_available"],
                    "cores_source": launch.env["cores_source"], "oversubscribed": launch.oversubscribed}
    return rows


def main() -> None:
    found = {"no quota": sweep([sys.executable], Path("/tmp/limits_free"))}
    with limited_cgroup(cpu_quota_us=100000) as (inside, _):
        found["one-CPU quota"] = sweep(inside, Path("/tmp/limits_quota"))
    with limited_cgroup(memory_bytes=3 * 2**30) as (inside, made):
        proc = subprocess.run([*inside, *SUITE, "--results-dir", "/tmp/limits_memory",
                               "--benchmark-storage=file:///tmp/limits_memory_storage", "--benchmark-save=limited"],
                              cwd=ROOT, capture_output=True, text=True)
        kills = cgroup_oom_kills(made["memory"])
    report = Path("/tmp/limits_memory/REPORT.md").read_text()
    found["3 GiB memory cgroup"] = {
        "exit": proc.returncode, "oom_kills": kills,
        "skipped": [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")],
        "report_lines": [line for line in report.splitlines() if "not run" in line or line.startswith("- memory")
                         or "session process" in line or "available to the run" in line]}
    print(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
