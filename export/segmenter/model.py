"""LR-ASPP segmentation head (Howard et al., 2019) on the stride-8/16 MobileNetV2 features.

The exported graph returns per-pixel class logits at the input resolution (``[B, K, S, S]``,
class 0 = background); argmax, undoing the letterbox and encoding are serving's job.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.segmentation.lraspp import LRASPPHead

from export.backbone import STRIDE8_CHANNELS, STRIDE16_CHANNELS, MobileNetV2Pyramid


class SegmentationHead(nn.Module):
    def __init__(self, num_classes: int, inter_channels: int = 128) -> None:
        super().__init__()
        self.lraspp = LRASPPHead(STRIDE8_CHANNELS, STRIDE16_CHANNELS, num_classes, inter_channels)

    def forward(self, c8: torch.Tensor, c16: torch.Tensor) -> torch.Tensor:
        """Class logits at stride 8, ``[B, K, S/8, S/8]``."""
        return self.lraspp({"low": c8, "high": c16})


class Segmenter(nn.Module):
    """The exported graph: normalised ``pixels [B, 3, S, S]`` -> ``logits [B, K, S, S]``."""

    def __init__(self, backbone: MobileNetV2Pyramid, head: SegmentationHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        logits = self.head(*self.backbone(pixels))
        return F.interpolate(logits, size=pixels.shape[-2:], mode="bilinear", align_corners=False)
