"""UFLD-style row-anchor lane classifier on a torchvision ResNet.

The head is a large fully connected layer, as in Ultra-Fast-Lane-Detection: most parameters live
there, so the gradient all-reduce carries as many bytes as the real model's does.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import torch
import torchvision
from torch import nn

REDUCED_CHANNELS = 8


@dataclass(frozen=True)
class ModelSpec:
    """Everything that fixes the model's shape; a preset is one of these."""

    name: str
    backbone: str
    input_height: int
    input_width: int
    griding_num: int
    num_rows: int
    num_lanes: int
    hidden: int
    use_aux: bool = False

    @property
    def num_cells(self) -> int:
        """Grid cells plus the extra 'absent' class."""
        return self.griding_num + 1

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, ModelSpec] = {
    "full": ModelSpec("full", "resnet18", 288, 800, griding_num=100, num_rows=56, num_lanes=4, hidden=2048),
    "small": ModelSpec("small", "resnet18", 144, 400, griding_num=100, num_rows=56, num_lanes=4, hidden=2048),
    "tiny": ModelSpec("tiny", "resnet18", 64, 160, griding_num=50, num_rows=56, num_lanes=4, hidden=128),
}

BACKBONES = {"resnet18": torchvision.models.resnet18, "resnet34": torchvision.models.resnet34}


def get_preset(name: str, use_aux: bool = False) -> ModelSpec:
    """Look up a preset by name; an unknown name is an error that lists the known ones."""
    try:
        spec = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
    return ModelSpec(**{**spec.to_dict(), "use_aux": use_aux})


class LaneNet(nn.Module):
    """ResNet features -> 1x1 reduction -> fully connected classifier over (cells, rows, lanes).

    With ``use_aux`` an auxiliary segmentation branch on the stride-8/16/32 features predicts a lane
    mask at stride 8 during training, as UFLD does; it adds no cost at inference.
    """

    def __init__(self, spec: ModelSpec, weights_path: str | None = None):
        super().__init__()
        self.spec = spec
        resnet = BACKBONES[spec.backbone](weights=None)
        if weights_path:
            resnet.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1)
        self.layer2, self.layer3, self.layer4 = resnet.layer2, resnet.layer3, resnet.layer4
        self.reduce = nn.Conv2d(512, REDUCED_CHANNELS, kernel_size=1)
        feature_size = REDUCED_CHANNELS * math.ceil(spec.input_height / 32) * math.ceil(spec.input_width / 32)
        self.head = nn.Sequential(
            nn.Linear(feature_size, spec.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(spec.hidden, spec.num_cells * spec.num_rows * spec.num_lanes),
        )
        self.aux = AuxSegmentation(spec.num_lanes + 1) if spec.use_aux else None

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        c2 = self.layer2(self.stem(images))
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        logits = self.head(self.reduce(c4).flatten(1))
        out = {"cls": logits.view(-1, self.spec.num_cells, self.spec.num_rows, self.spec.num_lanes)}
        if self.aux is not None and self.training:
            out["seg"] = self.aux(c2, c3, c4)
        return out


class AuxSegmentation(nn.Module):
    """Fuses three feature scales at stride 8 and predicts background + one class per lane."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.from_c2 = _conv_bn_relu(128, 64)
        self.from_c3 = _conv_bn_relu(256, 64)
        self.from_c4 = _conv_bn_relu(512, 64)
        self.classify = nn.Sequential(_conv_bn_relu(192, 64), nn.Conv2d(64, num_classes, kernel_size=1))

    def forward(self, c2: torch.Tensor, c3: torch.Tensor, c4: torch.Tensor) -> torch.Tensor:
        size = c2.shape[-2:]
        up = [nn.functional.interpolate(f, size=size, mode="bilinear", align_corners=False)
              for f in (self.from_c3(c3), self.from_c4(c4))]
        return self.classify(torch.cat([self.from_c2(c2), *up], dim=1))


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def gradient_bytes(model: nn.Module) -> int:
    """Bytes one gradient all-reduce carries per step (every trainable parameter, once)."""
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def parameter_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter's bytes: DDP ranks that stayed in sync end with the same digest."""
    digest = hashlib.sha256()
    for parameter in model.parameters():
        digest.update(parameter.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()
