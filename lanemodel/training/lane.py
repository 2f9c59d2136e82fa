"""The lane detector as a workload of the contract (``contract``): the suite's default, trained on synthetic
TuSimple-format frames decoded once into a cache, or on a TuSimple data set whose JPEGs every rank decodes at
every step, as a user's training does."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lanemodel.training.data import CachedLaneDataset, load_frame_cache, normalise, split_label_files
from lanemodel.training.losses import lane_loss
from lanemodel.training.model import LaneNet, ModelSpec, get_preset
from lanemodel.training.targets import encode_lanes, segmentation_mask
from lanemodel.workload.tusimple import read_label_files

FRAME_SOURCES = ("cache", "jpeg")


class NormalisedLaneNet(torch.nn.Module):
    """LaneNet that takes the data set's uint8 frames: ImageNet normalisation (and channels-last) is the
    model's first step, so the data set's items stay small until the batch is made."""

    def __init__(self, net: LaneNet, channels_last: bool):
        super().__init__()
        self.net = net
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    @property
    def spec(self) -> ModelSpec:
        return self.net.spec

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(normalise(images).contiguous(memory_format=self.memory_format))


class TuSimpleFrames(torch.utils.data.Dataset):
    """A TuSimple training split read as a user's training reads it: every item decodes its JPEG and resizes it
    to the model's input (the row-anchor targets are encoded once, up front)."""

    def __init__(self, data_dir: str | Path, spec: ModelSpec):
        self.root, self.spec = Path(data_dir), spec
        self.labels = read_label_files(split_label_files(data_dir, "train"))
        self.cls = [torch.from_numpy(encode_lanes(label.lanes, label.h_samples, spec.num_rows, spec.num_lanes,
                                                  spec.griding_num)) for label in self.labels]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        label, spec = self.labels[i], self.spec
        with Image.open(self.root / label.raw_file) as frame:
            resized = frame.convert("RGB").resize((spec.input_width, spec.input_height), Image.BILINEAR)
        image = torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1)
        seg = torch.empty(0, dtype=torch.int64)
        if spec.use_aux:
            seg = torch.from_numpy(np.asarray(segmentation_mask(label.lanes, label.h_samples, spec.num_lanes,
                                                                spec.input_height // 8, spec.input_width // 8)))
        return image, (self.cls[i], seg)


class LaneDetection:
    """UFLD-style lane detection on a ResNet backbone (``model.LaneNet``) with its TuSimple loss."""

    def __init__(self, data_dir: str = "", preset: str = "tiny", use_aux: bool = False, channels_last: bool = False,
                 frames: str = "cache"):
        if not data_dir:
            raise ValueError("the lane detector needs data_dir, a TuSimple-format data set")
        if frames not in FRAME_SOURCES:
            raise ValueError(f"frames must be one of {FRAME_SOURCES}, got {frames!r}")
        self.data_dir, self.frames, self.channels_last = data_dir, frames, channels_last
        self.spec = get_preset(preset, use_aux)
        self.name = f"TuSimple lane detector ({preset})"

    def model(self) -> torch.nn.Module:
        net = LaneNet(self.spec)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        return NormalisedLaneNet(net, self.channels_last)

    def dataset(self) -> torch.utils.data.Dataset:
        if self.frames == "jpeg":
            return TuSimpleFrames(self.data_dir, self.spec)
        return CachedLaneDataset(load_frame_cache(self.data_dir, self.spec))

    def loss(self, output: dict[str, torch.Tensor], target) -> torch.Tensor:
        cls, seg = target
        return lane_loss(output, cls, seg if seg.numel() else None)

    def describe_data(self) -> str:
        how = ("JPEG decoded and resized by every rank at every step" if self.frames == "jpeg"
               else "decoded once into a frame cache that every rank memory-maps")
        return f"{self.data_dir} ({how})"
