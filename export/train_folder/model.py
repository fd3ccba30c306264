"""What is trained on top of the cached features, and the full model it is exported as."""

from __future__ import annotations

import torch
from torch import nn

from export.classifier import WithFeatures

BLOCKS = 19  # torchvision MobileNetV2.features: stem, 17 inverted residuals, 1x1 conv to 1280


class Head(nn.Module):
    """The fine-tuned last ``blocks`` of the backbone (possibly none), pooling, a linear layer.

    Its input is the cached trunk output: pooled features when no block is tuned, else the
    feature map entering the first tuned block. BatchNorm keeps its ImageNet statistics.
    """

    def __init__(self, tuned: nn.Sequential, channels: int, classes: int, dropout: float) -> None:
        super().__init__()
        self.backbone = tuned  # "backbone." parameters get a smaller learning rate
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.backbone):
            x = self.backbone(x).mean(dim=(2, 3))
        return self.classifier(x)

    def train(self, mode: bool = True) -> Head:
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self


def full_model(features: nn.Sequential, head: Head) -> WithFeatures:
    """Frozen trunk + tuned blocks + the new classifier, with the CAM/embedding outputs."""
    cut = BLOCKS - len(head.backbone)
    return WithFeatures(nn.Sequential(*features[:cut], *head.backbone), head.classifier).eval()
