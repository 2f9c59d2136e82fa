"""A synthetic data set in the real TuSimple layout, written from ``synth`` frames.

``write_synthetic_dataset`` derives one independent stream per frame from
``numpy.random.SeedSequence(seed)`` (train and test come from two separate
spawned children, so the splits never share a frame).
"""

from __future__ import annotations

import json
import numbers
import os
from pathlib import Path

import numpy as np

from lanemodel.workload.synth import H_SAMPLES, JPEG_QUALITY, synth_frame

TRAIN_SPLIT = "synth"
TEST_SPLIT = "synth_test"
FRAME_NAME = "20.jpg"  # TuSimple labels the 20th (last) frame of each clip
TRAIN_LABEL_NAME = "label_data.json"
TEST_LABEL_NAME = "test_label.json"


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _prepare_out_dir(out_dir: object) -> Path:
    try:
        path = Path(out_dir)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"out_dir must be a path, got {out_dir!r}") from None
    if path.exists() and not path.is_dir():
        raise ValueError(f"out_dir {str(path)!r} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"out_dir {str(path)!r} cannot be created: {exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"out_dir {str(path)!r} is not writable")
    return path


def _write_split(
    root: Path, split: str, label_name: str, seq: np.random.SeedSequence, count: int
) -> Path:
    lines = []
    for index, child in enumerate(seq.spawn(count)):
        rng = np.random.default_rng(child)
        image, lanes = synth_frame(rng)
        raw_file = f"clips/{split}/{index:05d}/{FRAME_NAME}"
        frame_path = root / raw_file
        frame_path.parent.mkdir(parents=True, exist_ok=True)
        image.save(frame_path, format="JPEG", quality=JPEG_QUALITY)
        lines.append(json.dumps({"lanes": lanes, "h_samples": list(H_SAMPLES), "raw_file": raw_file}))
    label_path = root / label_name
    label_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return label_path


def write_synthetic_dataset(
    out_dir, frames: int = 64, seed: int = 0, test_frames: int = 0
) -> dict[str, Path]:
    """Write a synthetic TuSimple-format data set under ``out_dir``.

    Train frames go to ``clips/synth/<NNNNN>/20.jpg`` and are listed in
    ``label_data.json``; when ``test_frames > 0``, test frames go to
    ``clips/synth_test/<NNNNN>/20.jpg`` and are listed in ``test_label.json``.
    Returns ``{"train": label_data.json path}`` plus ``"test"`` when test
    frames were written.  The same ``seed`` gives byte-identical files; frame
    ``i`` of a split does not depend on how many frames are written.  Files
    of an earlier write into the same directory that this call does not
    produce are left as they are.

    Raises ``ValueError`` naming the argument for ``frames < 1``,
    ``test_frames < 0``, a negative or non-integer ``seed``, or an
    ``out_dir`` that is an existing file or cannot be written.
    """
    frames = _check_count("frames", frames, 1)
    test_frames = _check_count("test_frames", test_frames, 0)
    seed = _check_count("seed", seed, 0)
    root = _prepare_out_dir(out_dir)

    train_seq, test_seq = np.random.SeedSequence(seed).spawn(2)
    try:
        result = {"train": _write_split(root, TRAIN_SPLIT, TRAIN_LABEL_NAME, train_seq, frames)}
        if test_frames > 0:
            result["test"] = _write_split(root, TEST_SPLIT, TEST_LABEL_NAME, test_seq, test_frames)
    except OSError as exc:
        raise ValueError(f"out_dir {str(root)!r} is not writable: {exc}") from None
    return result
