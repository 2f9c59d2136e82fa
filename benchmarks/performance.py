"""Side-by-side measurements for the performance targets: each a ratio of two set-ups in one run."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lanemodel.analysis.stats import bootstrap_ratio, median_of_launches
from lanemodel.records import Launch, metrics_path
from lanemodel.session.runs import run_one_launch, train_config
from lanemodel.settings import SweepSettings


@dataclass
class Comparison:
    """median(candidate) / median(reference) of step times, launches as the samples."""

    candidate: list[np.ndarray]
    reference: list[np.ndarray]

    def as_info(self, target: float | None = None, lower_is_better: bool = True) -> dict:
        ratio = bootstrap_ratio(self.candidate, self.reference)
        info = {"ratio": ratio.point, "ratio_low": ratio.low, "ratio_high": ratio.high,
                "candidate_median_s": median_of_launches(self.candidate),
                "reference_median_s": median_of_launches(self.reference),
                "launches": len(self.candidate)}
        if target is not None:
            info["target"] = target
            info["target_met"] = bool(ratio.point <= target if lower_is_better else ratio.point >= target)
        return info


class PerformanceRunner:
    """Launches for the performance group; every metrics file lands in the results dir as usual."""

    def __init__(self, opts: SweepSettings, data_dir: Path):
        self.opts, self.data_dir = opts, data_dir

    def launch(self, name: str, policy: str, world_size: int, spawn: str | None = None, **overrides) -> Launch:
        cfg = train_config(self.opts, **overrides)
        launch, error = run_one_launch(self.opts, cfg, policy, world_size, f"perf_{name}", spawn)
        if error:
            raise RuntimeError(error)
        return launch

    def plain_process(self, name: str, threads: int, preset: str) -> dict:
        """One process, no DDP, ``threads`` intra-op threads: the baseline DDP must approach.

        Its document is `python -m lanemodel train --metrics-out`'s (config, env, records), not a launch."""
        out = metrics_path(self.opts.outputs.results_dir, f"perf_{name}")
        cmd = [sys.executable, "-m", "lanemodel", "train", "--data", str(self.data_dir), "--preset", preset,
               "--steps", str(self.opts.workload.steps), "--global-batch", str(self.opts.workload.global_batch),
               "--threads", str(threads), "--metrics-out", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.opts.launch.launch_timeout)
        if proc.returncode:
            raise RuntimeError(f"plain training failed ({' '.join(cmd)}):\n{proc.stderr[-2000:]}")
        doc = json.loads(out.read_text())
        doc["warmup_steps_dropped"] = self.opts.workload.drop_warmup
        return doc


def plain_step_times(doc: dict) -> np.ndarray:
    """Kept step times of a one-process run (no ranks to take the slowest of)."""
    return np.array([r["step_time"] for r in doc["records"] if r["step"] >= doc["warmup_steps_dropped"]])


def data_time_share(launches: list[Launch]) -> float:
    records = [r for launch in launches for r in launch.kept_records]
    return sum(r.data_time for r in records) / sum(r.step_time for r in records)


def launch_breakdown(doc: Launch) -> dict:
    """Where launch-to-first-step goes, for the slowest rank: start-up, imports, rendezvous, set-up."""
    launch = doc.launch["launch_time"]
    metas = [m for m in doc.rank_metas if "entry_time" in m]
    first_steps = {r.rank: r.start_time for r in doc.records if r.step == 0}
    slowest = max(metas, key=lambda m: first_steps.get(m["rank"], 0.0))
    return {"interpreter_start_s": slowest["entry_time"] - launch,
            "imports_s": slowest["imports_done_time"] - slowest["entry_time"],
            "rendezvous_s": slowest["init_done_time"] - slowest["imports_done_time"],
            "model_and_data_setup_s": first_steps[slowest["rank"]] - slowest["init_done_time"],
            "launch_to_first_step_s": doc.launch_to_first_step}


