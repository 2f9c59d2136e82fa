import json, tempfile, time, sys, subprocess
import lanemodel.engine.allreduce_bench as ab
from lanemodel.engine.threads import plan_threads, available_cpus
from lanemodel.engine.forkserver import shutdown_fork_server, ForkedRank
class Fresh:
    def __new__(cls, argv, env, log, entry=None):
        with open(log, "w") as f:
            return subprocess.Popen([sys.executable, "-m", "lanemodel.engine.allreduce_bench", *argv], env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
def main():
    buckets = json.load(open("results/probes/allreduce_tuned_ws8.json"))["buckets"]
    for rep in range(3):
        for ws in (8, 2):
            for kind in (("fresh", "forked") if rep % 2 == 0 else ("forked", "fresh")):
                ab.ForkedRank = Fresh if kind == "fresh" else ForkedRank
                r = ab.measure_allreduce(plan_threads("tuned", ws, available_cpus()), buckets, tempfile.mkdtemp(), timeout_s=300, reps=5)
                print(f"ws{ws} {kind:6s}: seconds {r['seconds']:5.1f} gradient wall {r['gradient']['wall']:.3f} cpu {r['gradient']['cpu']:.3f} 1MB {r['messages'][1048576]['wall']:.4f}", flush=True)
    shutdown_fork_server()
if __name__ == "__main__":
    main()
