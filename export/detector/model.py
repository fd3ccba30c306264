"""FCOS-style detector: per-location class scores and boxes at strides 8 and 16.

The ONNX graph ends at raw per-location predictions in input pixels, fixed in number:
``boxes [B, N, 4]`` (x1, y1, x2, y2) and ``scores [B, N, C]`` (sqrt of class probability times
centerness, as FCOS ranks). Thresholds, NMS and mapping back to the original image are serving's
job (``serving/processing/detection.py``), so they stay configurable without re-exporting.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from export.backbone import STRIDE8_CHANNELS, STRIDE16_CHANNELS, MobileNetV2Pyramid

STRIDES = (8, 16)


def _sep_conv(channels: int) -> nn.Sequential:
    """Depthwise 3x3 + pointwise 1x1 + GroupNorm + ReLU: a 3x3 conv at a tenth of the cost."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
        nn.Conv2d(channels, channels, 1, bias=False),
        nn.GroupNorm(16, channels),
        nn.ReLU(inplace=True),
    )


class Head(nn.Module):
    """Shared across levels: class logits, box distances (l, t, r, b) and centerness logits."""

    def __init__(self, channels: int, num_classes: int, depth: int = 2) -> None:
        super().__init__()
        self.cls_tower = nn.Sequential(*(_sep_conv(channels) for _ in range(depth)))
        self.reg_tower = nn.Sequential(*(_sep_conv(channels) for _ in range(depth)))
        self.cls = nn.Conv2d(channels, num_classes, 3, padding=1)
        self.reg = nn.Conv2d(channels, 4, 3, padding=1)
        self.ctr = nn.Conv2d(channels, 1, 3, padding=1)
        nn.init.constant_(self.cls.bias, -4.6)  # prior 0.01: focal loss starts stable
        nn.init.normal_(self.cls.weight, std=0.01)
        nn.init.normal_(self.reg.weight, std=0.01)
        nn.init.normal_(self.ctr.weight, std=0.01)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.cls_tower(x)
        r = self.reg_tower(x)
        return self.cls(c), self.reg(r), self.ctr(r)


class DetectionHead(nn.Module):
    """Stride-8/16 features -> per-location class logits, box distances, centerness logits."""

    def __init__(self, num_classes: int, input_size: int, channels: int = 64) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.lateral8 = nn.Conv2d(STRIDE8_CHANNELS, channels, 1)
        self.lateral16 = nn.Conv2d(STRIDE16_CHANNELS, channels, 1)
        self.smooth8 = _sep_conv(channels)
        self.smooth16 = _sep_conv(channels)
        self.head = Head(channels, num_classes)
        self.scales = nn.Parameter(torch.ones(len(STRIDES)))
        self.register_buffer("points", _points(input_size), persistent=False)
        self.register_buffer("strides", _strides(input_size), persistent=False)

    def forward(
        self, c8: torch.Tensor, c16: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Class logits ``[B, N, C]``, distances ``[B, N, 4]`` and centerness ``[B, N]``."""
        p16 = self.smooth16(self.lateral16(c16))
        p8 = self.smooth8(self.lateral8(c8) + F.interpolate(p16, scale_factor=2.0, mode="nearest"))
        logits, dists, ctrs = [], [], []
        for level, (feature, stride) in enumerate(zip((p8, p16), STRIDES, strict=True)):
            cls, reg, ctr = self.head(feature)
            logits.append(cls.flatten(2).transpose(1, 2))
            dists.append((F.relu(reg * self.scales[level]) * stride).flatten(2).transpose(1, 2))
            ctrs.append(ctr.flatten(1))
        return torch.cat(logits, 1), torch.cat(dists, 1), torch.cat(ctrs, 1)

    def decode(
        self, logits: torch.Tensor, dists: torch.Tensor, ctr: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Export outputs: ``boxes [B, N, 4]`` x1 y1 x2 y2 and ``scores [B, N, C]``."""
        xy = self.points.unsqueeze(0)
        boxes = torch.cat([xy - dists[..., :2], xy + dists[..., 2:]], dim=-1)
        scores = torch.sqrt(torch.sigmoid(logits) * torch.sigmoid(ctr).unsqueeze(-1))
        return boxes, scores


class Detector(nn.Module):
    """The exported graph: normalised ``pixels [B, 3, S, S]`` -> ``boxes``, ``scores``."""

    def __init__(self, backbone: MobileNetV2Pyramid, head: DetectionHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head.decode(*self.head(*self.backbone(pixels)))


def _points(size: int) -> torch.Tensor:
    """Centres of the locations, level by level, row-major: ``[N, 2]`` x, y in pixels."""
    out = []
    for s in STRIDES:
        centres = (torch.arange(size // s, dtype=torch.float32) + 0.5) * s
        ys, xs = torch.meshgrid(centres, centres, indexing="ij")
        out.append(torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1))
    return torch.cat(out)


def _strides(size: int) -> torch.Tensor:
    return torch.cat([torch.full(((size // s) ** 2,), float(s)) for s in STRIDES])
