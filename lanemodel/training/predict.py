"""Run a model over a split and write TuSimple prediction lines that the evaluator scores."""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from lanemodel.training.data import load_frame_cache, split_label_files
from lanemodel.training.lane import NormalisedLaneNet
from lanemodel.training.targets import decode_logits
from lanemodel.workload.evaluate import evaluate_files


@torch.no_grad()
def write_predictions(model: NormalisedLaneNet, data_dir: str | Path, out_path: str | Path, split: str = "test",
                      batch_size: int = 16) -> Path:
    """One prediction line per frame; run_time is the per-frame model time in ms, as TuSimple asks."""
    spec = model.spec
    cache = load_frame_cache(data_dir, spec, split)
    model.eval()
    out_path = Path(out_path)
    with out_path.open("w") as out:
        for first in range(0, len(cache), batch_size):
            images = torch.from_numpy(cache.images[first:first + batch_size].copy()).permute(0, 3, 1, 2)
            started = time.perf_counter()
            logits = model(images)["cls"].numpy()
            per_frame_ms = (time.perf_counter() - started) * 1000 / len(images)
            for i, frame_logits in enumerate(logits):
                label = cache.labels[first + i]
                lanes = decode_logits(frame_logits, label["h_samples"], spec.griding_num)
                out.write(json.dumps({"raw_file": label["raw_file"], "lanes": lanes,
                                      "run_time": per_frame_ms}) + "\n")
    return out_path


def score_model(model: NormalisedLaneNet, data_dir: str | Path, out_path: str | Path,
                split: str = "test") -> dict[str, float]:
    """Official TuSimple Accuracy / FP / FN of ``model`` on a split."""
    pred = write_predictions(model, data_dir, out_path, split)
    (gt,) = split_label_files(data_dir, split)
    return evaluate_files(pred, gt)
