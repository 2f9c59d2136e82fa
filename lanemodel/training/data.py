"""Decoded-frame cache and the training data set.

JPEG decoding and resizing cost more than a tiny model's step, so frames are decoded once into a
uint8 array on disk; every rank memory-maps the same file and the page cache shares it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lanemodel.training.model import ModelSpec
from lanemodel.training.targets import encode_lanes, segmentation_mask
from lanemodel.workload.tusimple import find_label_files, image_path, read_label_files

TEST_LABEL_FILE = "test_label.json"
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


def split_label_files(data_dir: str | Path, split: str) -> list[Path]:
    """Training labels are every label file but ``test_label.json``; the test split is that file."""
    files = find_label_files(data_dir)
    chosen = [f for f in files if (f.name == TEST_LABEL_FILE) == (split == "test")]
    if not chosen:
        raise FileNotFoundError(f"no {split} label file in {data_dir} (found: {[f.name for f in files]})")
    return chosen


@dataclass
class FrameCache:
    """Resized frames (N, H, W, 3) uint8 with their row-anchor targets and optional masks."""

    images: np.ndarray
    cls_targets: np.ndarray
    seg_targets: np.ndarray | None
    labels: list[dict]

    def __len__(self) -> int:
        return len(self.images)


def _cache_key(label_files: list[Path], spec: ModelSpec) -> str:
    digest = hashlib.sha256()
    for path in label_files:
        digest.update(path.read_bytes())
    shape = (spec.input_height, spec.input_width, spec.griding_num, spec.num_rows, spec.num_lanes, spec.use_aux)
    digest.update(repr(shape).encode())
    return digest.hexdigest()[:16]


def cache_dir_for(data_dir: str | Path, spec: ModelSpec, split: str) -> Path:
    files = split_label_files(data_dir, split)
    return Path(data_dir) / ".frame_cache" / f"{split}-{_cache_key(files, spec)}"


def build_frame_cache(data_dir: str | Path, spec: ModelSpec, split: str = "train") -> Path:
    """Decode and resize every frame of a split once; an existing cache for the same labels is reused."""
    target = cache_dir_for(data_dir, spec, split)
    if (target / "index.json").exists():
        return target
    labels = read_label_files(split_label_files(data_dir, split))
    n, h, w = len(labels), spec.input_height, spec.input_width
    images = np.empty((n, h, w, 3), dtype=np.uint8)
    cls = np.empty((n, spec.num_rows, spec.num_lanes), dtype=np.int64)
    seg = np.empty((n, h // 8, w // 8), dtype=np.int64) if spec.use_aux else None
    for i, label in enumerate(labels):
        with Image.open(image_path(data_dir, label)) as img:
            images[i] = np.asarray(img.convert("RGB").resize((w, h), Image.BILINEAR))
        cls[i] = encode_lanes(label.lanes, label.h_samples, spec.num_rows, spec.num_lanes, spec.griding_num)
        if seg is not None:
            seg[i] = segmentation_mask(label.lanes, label.h_samples, spec.num_lanes, h // 8, w // 8)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".building-"))
    np.save(staging / "images.npy", images)
    np.save(staging / "cls.npy", cls)
    if seg is not None:
        np.save(staging / "seg.npy", seg)
    index = [{"raw_file": lb.raw_file, "h_samples": list(lb.h_samples)} for lb in labels]
    (staging / "index.json").write_text(json.dumps(index))
    try:
        os.rename(staging, target)
    except OSError:  # another process finished the same cache first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_frame_cache(data_dir: str | Path, spec: ModelSpec, split: str = "train") -> FrameCache:
    path = build_frame_cache(data_dir, spec, split)
    seg_path = path / "seg.npy"
    return FrameCache(
        images=np.load(path / "images.npy", mmap_mode="r"),
        cls_targets=np.load(path / "cls.npy"),
        seg_targets=np.load(seg_path) if seg_path.exists() else None,
        labels=json.loads((path / "index.json").read_text()),
    )


class CachedLaneDataset(torch.utils.data.Dataset):
    """Indexes the cache: items ``(uint8 CHW image, (row-anchor target, mask or empty))``, so batches stay small
    until the model normalises them."""

    def __init__(self, cache: FrameCache):
        self.cache = cache

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, i: int):
        image = torch.from_numpy(np.array(self.cache.images[i])).permute(2, 0, 1)
        cls = torch.from_numpy(self.cache.cls_targets[i])
        seg = torch.from_numpy(self.cache.seg_targets[i]) if self.cache.seg_targets is not None else torch.empty(0)
        return image, (cls, seg)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW -> float, ImageNet mean and std, as torchvision backbones expect."""
    return (images.float() - IMAGENET_MEAN) / IMAGENET_STD
