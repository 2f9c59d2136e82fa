"""A ResNet-18-shaped classifier built from torchvision's residual blocks, on generated images: a workload of
the suite's contract.

    pytest --workload image_classifier:ImageClassifier --world-sizes 1,2 --steps 6

``WIDTH`` is the first stage's channels (torchvision's resnet18 has 64; the stages double it). The images are
made from a fixed seed, so every rank and every run trains on the same data without a download.
"""
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1

WIDTH = 32
IMAGE_SIZE = 32
CLASSES = 10
IMAGES = 256


def stage(channels_in: int, channels: int, stride: int) -> nn.Sequential:
    """Two basic blocks, the first changing the resolution and channels as resnet18's stages do."""
    downsample = None
    if stride != 1 or channels_in != channels:
        downsample = nn.Sequential(conv1x1(channels_in, channels, stride), nn.BatchNorm2d(channels))
    return nn.Sequential(BasicBlock(channels_in, channels, stride, downsample), BasicBlock(channels, channels))


def resnet18_shaped(width: int, classes: int) -> nn.Module:
    widths = [width, 2 * width, 4 * width, 8 * width]
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
        stage(width, widths[0], 1), stage(widths[0], widths[1], 2), stage(widths[1], widths[2], 2),
        stage(widths[2], widths[3], 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[3], classes))


class GeneratedImages(torch.utils.data.Dataset):
    """Noise images whose class shifts their mean: learnable, so the loss falls as training goes."""

    def __init__(self, count: int = IMAGES, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, CLASSES, (count,), generator=generator)
        noise = torch.randn(count, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
        self.images = noise + self.labels.view(-1, 1, 1, 1) / CLASSES

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], self.labels[i]


class ImageClassifier:
    name = f"ResNet-18-shaped classifier (width {WIDTH})"

    def model(self) -> nn.Module:
        return resnet18_shaped(WIDTH, CLASSES)

    def dataset(self) -> torch.utils.data.Dataset:
        return GeneratedImages()

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(output, target)

    def optimizer(self, params) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=0.05, momentum=0.9)
