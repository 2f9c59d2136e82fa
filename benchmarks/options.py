"""Every option of the suite, declared once: command line first, then pytest.ini, then the default."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

# name -> (ini key, default, help)
OPTIONS = {
    "world_sizes": ("scaling_world_sizes", "1,2,4,8,16", "comma-separated DDP world sizes to measure"),
    "preset": ("scaling_preset", "tiny", "model preset: tiny, small or full"),
    "steps": ("scaling_steps", "12", "training steps per launch"),
    "global_batch": ("scaling_global_batch", "16", "global batch (strong scaling) or per-rank batch (weak)"),
    "threads": ("scaling_threads", "tuned", "thread policies, comma-separated: naive, tuned, or a count"),
    "scaling": ("scaling_mode", "strong", "strong (fixed global batch) or weak (fixed per-rank batch)"),
    "spawn": ("scaling_spawn", "forkserver", "start ranks as fresh interpreters (fresh) or fork them from a server "
                                        "that has imported torch (forkserver)"),
    "rounds": ("scaling_rounds", "3", "launches per world size; launches are the independent samples"),
    "drop_warmup": ("scaling_drop_warmup", "2", "first steps of each launch left out of the statistics"),
    "results_dir": ("scaling_results_dir", "results", "where plots, metrics JSON and REPORT.md go"),
    "launch_timeout": ("scaling_launch_timeout", "900", "seconds before a launch is killed"),
    "inject_comm_delay_ms": ("scaling_inject_comm_delay_ms", "0",
                             "sleep added to every cross-rank all-reduce (proves the gate catches a slowdown)"),
    "scaling_baseline": ("scaling_baseline", "", "baseline to gate against: a saved JSON path, or a run id/name "
                                                 "in the benchmark storage (default: the --benchmark-compare one)"),
    "scaling_max_slowdown": ("scaling_max_slowdown", "1.10",
                             "largest allowed current/baseline median step-time ratio"),
    "scaling_max_efficiency_drop": ("scaling_max_efficiency_drop", "0.10",
                                    "largest allowed relative drop of parallel efficiency"),
}


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("ddp-lane-bench", "DDP scaling benchmarks")
    group.addoption("--performance", dest="lanebench_performance", action="store_true",
                    help="run the performance group (targets as side-by-side ratios) instead of the scaling group")
    for name, (ini, default, help_text) in OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        group.addoption(flag, dest=f"lanebench_{name}", default=None, help=f"{help_text} (ini {ini}, default {default!r})")
        parser.addini(ini, help=help_text, default=default)


def raw_option(config: pytest.Config, name: str) -> str:
    value = config.getoption(f"lanebench_{name}")
    return str(value) if value is not None else str(config.getini(OPTIONS[name][0]))


@dataclass(frozen=True)
class SuiteOptions:
    world_sizes: tuple[int, ...]
    preset: str
    steps: int
    global_batch: int
    threads: tuple[str, ...]
    scaling: str
    spawn: str
    rounds: int
    drop_warmup: int
    results_dir: Path
    launch_timeout: float
    inject_comm_delay_ms: float
    scaling_baseline: str
    max_slowdown: float
    max_efficiency_drop: float


def _number(config: pytest.Config, name: str, kind, minimum: float, inclusive: bool = True):
    text = raw_option(config, name)
    flag = "--" + name.replace("_", "-")
    try:
        value = kind(text)
    except ValueError:
        raise pytest.UsageError(f"{flag}: {text!r} is not a {'whole ' if kind is int else ''}number") from None
    if value < minimum or (not inclusive and value == minimum):
        raise pytest.UsageError(f"{flag} must be {'>=' if inclusive else '>'} {minimum:g}, got {value:g}")
    return value


def read_options(config: pytest.Config) -> SuiteOptions:
    """Validated options; bad values are a usage error naming the option."""
    from lanemodel.cli import UsageError, parse_world_sizes
    from lanemodel.model import PRESETS
    from lanemodel.threads import parse_policy

    try:
        world_sizes = tuple(parse_world_sizes(raw_option(config, "world_sizes")))
        threads = tuple(t.strip() for t in raw_option(config, "threads").split(",") if t.strip())
        for policy in threads:
            parse_policy(policy)
    except (UsageError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None
    preset = raw_option(config, "preset")
    if preset not in PRESETS:
        raise pytest.UsageError(f"--preset: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    scaling = raw_option(config, "scaling")
    if scaling not in ("strong", "weak"):
        raise pytest.UsageError(f"--scaling must be strong or weak, got {scaling!r}")
    spawn = raw_option(config, "spawn")
    if spawn not in ("fresh", "forkserver"):
        raise pytest.UsageError(f"--spawn must be fresh or forkserver, got {spawn!r}")
    steps = _number(config, "steps", int, 1)
    drop = _number(config, "drop_warmup", int, 0)
    if drop >= steps:
        raise pytest.UsageError(f"--drop-warmup {drop} leaves no step of --steps {steps} to measure")
    global_batch = _number(config, "global_batch", int, 1)
    return SuiteOptions(
        world_sizes=world_sizes, preset=preset, steps=steps, global_batch=global_batch, threads=threads or ("tuned",),
        scaling=scaling, spawn=spawn, rounds=_number(config, "rounds", int, 1), drop_warmup=drop,
        results_dir=Path(raw_option(config, "results_dir")),
        launch_timeout=_number(config, "launch_timeout", float, 0, inclusive=False),
        inject_comm_delay_ms=_number(config, "inject_comm_delay_ms", float, 0),
        scaling_baseline=raw_option(config, "scaling_baseline"),
        max_slowdown=_number(config, "scaling_max_slowdown", float, 1.0),
        max_efficiency_drop=_number(config, "scaling_max_efficiency_drop", float, 0.0),
    )


def check_batch_splits(opts: SuiteOptions) -> None:
    """Strong scaling needs the global batch to split evenly over every world size of the sweep."""
    if opts.scaling != "strong":
        return
    bad = [ws for ws in opts.world_sizes if opts.global_batch % ws]
    if bad:
        raise pytest.UsageError(f"--global-batch {opts.global_batch} does not divide evenly across world size "
                                f"{bad[0]}; choose a multiple of {max(opts.world_sizes)}")
