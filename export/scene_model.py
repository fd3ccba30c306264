"""One network, two tasks: detector and segmenter heads trained together on one backbone.

The CPU budget is tight, and the trainable upper backbone is most of the cost of a step, so
both heads learn from the same forward pass; each is then exported as its own graph
(:class:`~export.detector.model.Detector`, :class:`~export.segmenter.model.Segmenter`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from export.backbone import MobileNetV2Pyramid
from export.detector.losses import fcos_loss
from export.detector.model import DetectionHead, Detector
from export.detector.targets import assign
from export.feature_cache import CachedSplit
from export.scene_tensors import IGNORE
from export.segmenter.model import SegmentationHead, Segmenter
from export.training import LossFn


class SceneModel(nn.Module):
    def __init__(self, backbone: MobileNetV2Pyramid, num_classes: int, input_size: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.detection = DetectionHead(num_classes, input_size)
        self.segmentation = SegmentationHead(num_classes + 1)  # + background

    def detector(self) -> Detector:
        return Detector(self.backbone, self.detection).eval()

    def segmenter(self) -> Segmenter:
        return Segmenter(self.backbone, self.segmentation).eval()


def scene_loss(model: SceneModel, split: CachedSplit, seg_weight: float = 1.0) -> LossFn:
    """FCOS losses plus per-pixel cross-entropy, for a batch of cached scene indices."""
    head = model.detection

    def loss(indices: np.ndarray) -> dict[str, torch.Tensor]:
        c8 = torch.from_numpy(np.stack([split.features[i] for i in indices]).astype(np.float32))
        mid16 = torch.from_numpy(np.stack([split.mid16[i] for i in indices]).astype(np.float32))
        c16 = model.backbone.tuned16(mid16)
        logits, dists, ctr = head(c8, c16)
        targets = [
            assign(
                head.points,
                head.strides,
                torch.from_numpy(split.boxes[i]),
                torch.from_numpy(split.labels[i]),
            )
            for i in indices
        ]
        losses = fcos_loss(
            logits.flatten(0, 1),
            dists.flatten(0, 1),
            ctr.flatten(0, 1),
            torch.cat([t.labels for t in targets]),
            torch.cat([t.distances for t in targets]),
            torch.cat([t.centerness for t in targets]),
        )
        # Cross-entropy at half the input resolution: a quarter of the cost, small shapes kept.
        classes = torch.from_numpy(
            np.stack([split.classes[i][::2, ::2] for i in indices]).astype(np.int64)
        )
        seg = F.interpolate(
            model.segmentation(c8, c16),
            size=classes.shape[-2:],
            mode="bilinear",
            align_corners=False,
        )
        losses["seg"] = seg_weight * F.cross_entropy(seg, classes, ignore_index=IGNORE)
        return losses

    return loss
