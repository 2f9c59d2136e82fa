"""UFLD's training objective: cell classification, row-to-row similarity, optional segmentation."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class LossWeights:
    similarity: float = 1.0
    segmentation: float = 1.0
    focal_gamma: float = 2.0


def focal_cell_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """Softmax focal loss over the cell dimension (dim 1); gamma 0 is plain cross-entropy."""
    log_probs = F.log_softmax(logits, dim=1)
    if gamma:
        log_probs = (1.0 - log_probs.exp()).pow(gamma) * log_probs
    return F.nll_loss(log_probs, target)


def similarity_loss(logits: torch.Tensor) -> torch.Tensor:
    """L1 between neighbouring rows' cell distributions: lanes are continuous from row to row."""
    probs = F.softmax(logits, dim=1)
    return (probs[:, :, 1:] - probs[:, :, :-1]).abs().sum(dim=1).mean()


def lane_loss(outputs: dict[str, torch.Tensor], cls_target: torch.Tensor,
              seg_target: torch.Tensor | None = None, weights: LossWeights = LossWeights()) -> torch.Tensor:
    """Total loss: classification + similarity, plus segmentation when the aux branch ran."""
    logits = outputs["cls"]
    loss = focal_cell_loss(logits, cls_target, weights.focal_gamma)
    loss = loss + weights.similarity * similarity_loss(logits)
    if "seg" in outputs:
        if seg_target is None:
            raise ValueError("the model produced a segmentation output but no segmentation target was given")
        loss = loss + weights.segmentation * F.cross_entropy(outputs["seg"], seg_target)
    return loss
