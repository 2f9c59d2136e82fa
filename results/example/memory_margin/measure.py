"""How far off is the session's memory prediction? Each world size's launch runs alone in a fresh memory cgroup
(root, cgroup v1 or v2, no limit that binds); what its ranks added to the cgroup at their peak is compared with
what the memory plan predicts for it from the smaller world sizes' rank metas (``lanemodel.session.memory``).

    .venv/bin/python results/example/memory_margin/measure.py 1,2,4,8 > results/example/memory_margin/margin.json
"""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from cgroup_harness import limited_cgroup  # noqa: E402

from lanemodel.engine.cgroup import Memory  # noqa: E402
from lanemodel.records import Launch  # noqa: E402
from lanemodel.session.memory import MARGIN, MemoryPlan  # noqa: E402

DRIVER = """
import json, sys
from lanemodel.engine.cgroup import controller_mount, memory_used
from lanemodel.session.opening import open_session
from lanemodel.settings import parse_settings

opts = parse_settings({"world_sizes": sys.argv[2], "steps": "6", "drop_warmup": "1", "rounds": "1",
                       "warmup_launches": "0", "probes": "0", "results_dir": sys.argv[1]})
session = open_session(opts)
session.launcher.prepare()
own = controller_mount("memory").chain()[0]
peak_file = own / ("memory.peak" if (own / "memory.peak").exists() else "memory.max_usage_in_bytes")
before = memory_used()
if peak_file.name == "memory.max_usage_in_bytes":
    peak_file.write_text("0")                     # v1: the peak from now on
launch = session.measure(("tuned", int(sys.argv[2])))[0]
print(json.dumps({"before": before, "peak": int(peak_file.read_text()), "launch": launch.to_dict()}))
session.close()
"""


def main() -> None:
    sizes = [int(ws) for ws in sys.argv[1].split(",")]
    plan = MemoryPlan(lambda: Memory(0, ""))
    rows = []
    for world_size in sizes:
        with limited_cgroup(memory_bytes=20 * 2**30) as (inside, _):
            out = subprocess.run([*inside, "-c", DRIVER, f"/tmp/memory_margin_ws{world_size}", str(world_size)],
                                 cwd=ROOT, capture_output=True, text=True, timeout=900, check=True)
        found = json.loads(out.stdout.strip().splitlines()[-1])
        added = found["peak"] - found["before"]
        predicted = plan.need(world_size) / (1 + MARGIN) if plan.measured else None
        rows.append({"world_size": world_size, "ranks_added_gib": round(added / 2**30, 3),
                     "predicted_gib": round(predicted / 2**30, 3) if predicted else None,
                     "short_by": round(added / predicted - 1, 3) if predicted else None,
                     "rank_peaks_mb": [round(m["max_rss_mb"]) for m in found["launch"]["rank_metas"]],
                     "rank_shared_mb": [round(m["shared_rss_mb"]) for m in found["launch"]["rank_metas"]],
                     "session_before_gib": round(found["before"] / 2**30, 3)})
        plan.observe(Launch.from_dict(found["launch"]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    print(json.dumps({"margin": MARGIN, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
