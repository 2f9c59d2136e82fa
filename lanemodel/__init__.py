"""ddp-lane-bench's library: how DDP training of a TuSimple lane detector scales over CPU processes.

The packages follow the data flow, each importing only the ones below it:

    workload  TuSimple labels and official metric, synthetic TuSimple-format data
    training  config, model, targets, losses, one rank's training loop
    engine    thread plans, launcher and fork server, rank entry point, collector, sweep
    records   the typed record model every layer shares (StepRecord, Launch)
    analysis  statistics, speedup, breakdown, cost model, regression gate (no torch, no pytest)
    outputs   report, plots, terminal table: they only format what the analysis computed

The public API below needs no pytest; it is loaded on first use, so ``import lanemodel`` does not
import torch (the analysis runs without it).
"""
from __future__ import annotations

import importlib

_API = {
    "TrainConfig": "lanemodel.training.config",
    "train": "lanemodel.training.train",
    "RankContext": "lanemodel.training.train",
    "measure_world_size": "lanemodel.engine.sweep",
    "run_sweep": "lanemodel.engine.sweep",
    "StepRecord": "lanemodel.records",
    "Launch": "lanemodel.records",
    "load_launch": "lanemodel.records",
    "load_results_dir": "lanemodel.records",
    "analyse": "lanemodel.analysis.curve",
    "GateSettings": "lanemodel.analysis.gate",
    "compare": "lanemodel.analysis.gate",
    "write_report": "lanemodel.outputs.report",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'lanemodel' has no attribute {name!r}")
