"""The regression gate: compare this run's scaling curve with a saved baseline, with the noise in view.

Per world size two ratios, each with a two-level bootstrap interval (launches, then steps):
median step time current/baseline, and parallel efficiency current/baseline. A verdict is
"regressed" only when the whole interval is past the limit, "pass" when it is entirely within,
and "inconclusive" otherwise.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.stats import Interval, bootstrap_median_ratio, verdict_higher_is_worse, verdict_lower_is_worse

# Configuration that must match for two runs to be comparable at all.
COMPARABLE_KEYS = ("cpu_model", "cores_available", "preset", "scaling", "spawn", "global_batch", "steps",
                   "drop_warmup", "torch")


class BaselineError(Exception):
    """The baseline cannot be used: missing, unreadable, or measured under other conditions."""


@dataclass(frozen=True)
class GateVerdict:
    benchmark: str
    policy: str
    world_size: int
    metric: str                 # "step_time_ratio" or "efficiency_ratio"
    baseline_value: float
    current_value: float
    ratio: Interval
    limit: float
    verdict: str

    def describe(self, baseline_name: str) -> str:
        return (f"world size {self.world_size} ({self.policy}): {self.metric} {self.ratio.point:.3f} "
                f"[{self.ratio.low:.3f}, {self.ratio.high:.3f}] vs limit {self.limit:.3f} -> {self.verdict.upper()}; "
                f"baseline {self.baseline_value:.4g}, current {self.current_value:.4g} ({baseline_name})")


def load_baseline(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BaselineError(f"baseline file {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise BaselineError(f"baseline file {path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise BaselineError(f"baseline file {path} is not a pytest-benchmark file (no 'benchmarks' list)")
    if not isinstance(data.get("scaling"), dict) or "config" not in data["scaling"]:
        raise BaselineError(f"baseline file {path} has no 'scaling' section: it was not saved by this suite")
    return data


def check_comparable(baseline: dict, current_config: dict, name: str) -> None:
    """Refuse, naming every difference, rather than compare runs from different set-ups."""
    base_config = baseline["scaling"]["config"]
    diffs = [f"{k}: baseline {base_config.get(k)!r}, current {current_config.get(k)!r}"
             for k in COMPARABLE_KEYS if base_config.get(k) != current_config.get(k)]
    if diffs:
        raise BaselineError(f"baseline {name} was measured under a different configuration or machine and is "
                            f"not compared:\n  " + "\n  ".join(diffs))


def launches_of(bench: dict) -> list[np.ndarray]:
    return [np.asarray(steps, dtype=float) for steps in bench["extra_info"]["step_times"] if steps]


def _by_key(benchmarks: list[dict]) -> dict[tuple[str, int], dict]:
    out = {}
    for bench in benchmarks:
        info = bench.get("extra_info", {})
        if "world_size" in info and info.get("step_times"):
            out[(info["threads"], info["world_size"])] = bench
    return out


def compare(current: list[dict], baseline: dict, max_slowdown: float, max_efficiency_drop: float,
            n_boot: int = 2000) -> list[GateVerdict]:
    """Verdicts for every (policy, world size) present in both runs; efficiency against the smallest one."""
    base = _by_key(baseline["benchmarks"])
    cur = _by_key(current)
    verdicts = []
    for key in sorted(set(base) & set(cur)):
        policy, ws = key
        c_launches, b_launches = launches_of(cur[key]), launches_of(base[key])
        step = bootstrap_median_ratio([c_launches], [b_launches], n_boot=n_boot)
        verdicts.append(GateVerdict(cur[key]["name"], policy, ws, "step_time_ratio",
                                    float(np.median(np.concatenate(b_launches))),
                                    float(np.median(np.concatenate(c_launches))), step, max_slowdown,
                                    verdict_higher_is_worse(step, max_slowdown)))
        ref = min(w for p, w in set(base) & set(cur) if p == policy)
        if ws == ref:
            continue
        c_ref, b_ref = launches_of(cur[(policy, ref)]), launches_of(base[(policy, ref)])
        eff = bootstrap_median_ratio([c_ref, b_launches], [c_launches, b_ref], n_boot=n_boot)
        batches = cur[key]["extra_info"]["global_batch_size"] / cur[(policy, ref)]["extra_info"]["global_batch_size"]
        scale = batches * ref / ws     # efficiency = throughput gain / process-count gain
        verdicts.append(GateVerdict(cur[key]["name"], policy, ws, "efficiency_ratio",
                                    scale * _median(b_ref) / _median(b_launches),
                                    scale * _median(c_ref) / _median(c_launches), eff, 1.0 - max_efficiency_drop,
                                    verdict_lower_is_worse(eff, 1.0 - max_efficiency_drop)))
    return verdicts


def _median(launches: list[np.ndarray]) -> float:
    return float(np.median(np.concatenate(launches)))


def verdicts_json(verdicts: list[GateVerdict], baseline_name: str) -> dict:
    return {"baseline": baseline_name, "verdicts": [asdict(v) for v in verdicts],
            "regressed": any(v.verdict == "regressed" for v in verdicts)}
