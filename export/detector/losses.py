"""FCOS losses: focal loss on classes, GIoU on boxes, BCE on centerness."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchvision.ops import sigmoid_focal_loss


def giou_loss_ltrb(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - GIoU`` of boxes given as distances from the same point, ``[M, 4]`` each."""
    pred_area = (pred[:, 0] + pred[:, 2]) * (pred[:, 1] + pred[:, 3])
    target_area = (target[:, 0] + target[:, 2]) * (target[:, 1] + target[:, 3])
    inter_w = torch.minimum(pred[:, 0], target[:, 0]) + torch.minimum(pred[:, 2], target[:, 2])
    inter_h = torch.minimum(pred[:, 1], target[:, 1]) + torch.minimum(pred[:, 3], target[:, 3])
    inter = inter_w.clamp(min=0) * inter_h.clamp(min=0)
    union = pred_area + target_area - inter
    enclose_w = torch.maximum(pred[:, 0], target[:, 0]) + torch.maximum(pred[:, 2], target[:, 2])
    enclose_h = torch.maximum(pred[:, 1], target[:, 1]) + torch.maximum(pred[:, 3], target[:, 3])
    enclose = (enclose_w * enclose_h).clamp(min=1e-6)
    iou = inter / union.clamp(min=1e-6)
    return 1 - (iou - (enclose - union) / enclose)


def fcos_loss(
    logits: torch.Tensor,
    distances: torch.Tensor,
    ctr_logits: torch.Tensor,
    labels: torch.Tensor,
    target_distances: torch.Tensor,
    target_ctr: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """All inputs flattened over batch and locations: ``logits [M, C]``, ``labels [M]`` (-1 bg)."""
    positive = labels >= 0
    num_pos = max(float(positive.sum()), 1.0)
    onehot = torch.zeros_like(logits)
    onehot[positive, labels[positive]] = 1.0
    cls = sigmoid_focal_loss(logits, onehot, alpha=0.25, gamma=2.0, reduction="sum") / num_pos
    if not positive.any():
        zero = distances.sum() * 0
        return {"cls": cls, "box": zero, "ctr": zero + ctr_logits.sum() * 0}
    weight = target_ctr[positive]
    box = (giou_loss_ltrb(distances[positive], target_distances[positive]) * weight).sum()
    box = box / weight.sum().clamp(min=1e-6)
    ctr = (
        F.binary_cross_entropy_with_logits(
            ctr_logits[positive], target_ctr[positive], reduction="sum"
        )
        / num_pos
    )
    return {"cls": cls, "box": box, "ctr": ctr}
