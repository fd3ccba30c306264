"""MobileNetV2 feature pyramid (strides 8 and 16) with the packaged ImageNet weights.

Detection and segmentation heads share it. Layers above stride 16 are dropped: the objects we
look for are at most ~120 px in a 256 px input, and on CPU every skipped layer is time saved.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from export.classifier import load_mobilenet_v2

STRIDE8_CHANNELS = 32
STRIDE16_CHANNELS = 96
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class MobileNetV2Pyramid(nn.Module):
    """``pixels`` -> (stride-8 map with 32 channels, stride-16 map with 96 channels).

    Only the last three stride-16 blocks are fine-tuned; the layers below stay at their
    ImageNet weights. Frozen, they can run once per image (:mod:`export.feature_cache`)
    instead of once per step, which is what makes training on two shared CPU cores practical.
    """

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.to_stride8 = features[:7]
        self.frozen16 = features[7:11]  # 64 channels at stride 16
        self.tuned16 = features[11:14]  # 96 channels at stride 16
        for p in (*self.to_stride8.parameters(), *self.frozen16.parameters()):
            p.requires_grad_(False)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c8 = self.to_stride8(pixels)
        return c8, self.tuned16(self.frozen16(c8))

    def train(self, mode: bool = True) -> MobileNetV2Pyramid:
        """BatchNorm statistics stay at their ImageNet values: our batches are small."""
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self


def pretrained_pyramid(cache: Path) -> MobileNetV2Pyramid:
    return MobileNetV2Pyramid(load_mobilenet_v2(cache).features)


def untrained_pyramid() -> MobileNetV2Pyramid:
    """Same architecture with random weights, for tests that must not download anything."""
    import torchvision

    return MobileNetV2Pyramid(torchvision.models.mobilenet_v2().features)
