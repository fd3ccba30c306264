"""FaceNet's Inception-ResNet-v1 (Szegedy et al., 2016; Schroff et al., 2015) in torch.

Batch norm is folded into the convolutions (every conv has a bias and no BN layer), which is
how the frozen graph stores it and how we store the Keras model after folding. Submodule paths
mirror the TensorFlow scopes (``Repeat_1.block17_3.Branch_1.Conv2d_0b_1x7`` is
``InceptionResnetV1/Repeat_1/block17_3/Branch_1/Conv2d_0b_1x7``), so weight mapping is a
rename. :class:`FaceNet` wraps it with FaceNet's input standardisation and L2 normalisation:
RGB pixels in 0..255 in, unit-length embeddings out.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = 160


class ConvReLU(nn.Conv2d):
    """Convolution with folded batch norm, then ReLU; ``same`` pads stride-1 convs."""

    def __init__(
        self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1, same: bool = True
    ) -> None:
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        padding = (kh // 2, kw // 2) if same else (0, 0)
        super().__init__(cin, cout, (kh, kw), stride=stride, padding=padding, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(x))


def _seq(*layers: tuple[str, nn.Module]) -> nn.Sequential:
    return nn.Sequential(OrderedDict(layers))


class Residual(nn.Module):
    """``relu?(x + scale * Conv2d_1x1(concat(branches)))``: blocks 35, 17 and 8."""

    def __init__(
        self, branches: list[nn.Module], width: int, channels: int, scale: float, relu: bool = True
    ) -> None:
        super().__init__()
        for i, branch in enumerate(branches):
            self.add_module(f"Branch_{i}", branch)
        self.count = len(branches)
        self.Conv2d_1x1 = nn.Conv2d(width, channels, 1, bias=True)
        self.scale = scale
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([getattr(self, f"Branch_{i}")(x) for i in range(self.count)], dim=1)
        out = x + self.scale * self.Conv2d_1x1(mixed)
        return F.relu(out) if self.relu else out


def block35(scale: float = 0.17) -> Residual:
    return Residual(
        [
            _seq(("Conv2d_1x1", ConvReLU(256, 32, 1))),
            _seq(("Conv2d_0a_1x1", ConvReLU(256, 32, 1)), ("Conv2d_0b_3x3", ConvReLU(32, 32, 3))),
            _seq(
                ("Conv2d_0a_1x1", ConvReLU(256, 32, 1)),
                ("Conv2d_0b_3x3", ConvReLU(32, 32, 3)),
                ("Conv2d_0c_3x3", ConvReLU(32, 32, 3)),
            ),
        ],
        96,
        256,
        scale,
    )


def block17(scale: float = 0.10) -> Residual:
    return Residual(
        [
            _seq(("Conv2d_1x1", ConvReLU(896, 128, 1))),
            _seq(
                ("Conv2d_0a_1x1", ConvReLU(896, 128, 1)),
                ("Conv2d_0b_1x7", ConvReLU(128, 128, (1, 7))),
                ("Conv2d_0c_7x1", ConvReLU(128, 128, (7, 1))),
            ),
        ],
        256,
        896,
        scale,
    )


def block8(scale: float = 0.20, relu: bool = True) -> Residual:
    return Residual(
        [
            _seq(("Conv2d_1x1", ConvReLU(1792, 192, 1))),
            _seq(
                ("Conv2d_0a_1x1", ConvReLU(1792, 192, 1)),
                ("Conv2d_0b_1x3", ConvReLU(192, 192, (1, 3))),
                ("Conv2d_0c_3x1", ConvReLU(192, 192, (3, 1))),
            ),
        ],
        384,
        1792,
        scale,
        relu,
    )


class Concat(nn.Module):
    """Mixed_6a / Mixed_7a: parallel reductions, concatenated; the last branch is a max pool."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        for i, branch in enumerate(branches):
            self.add_module(f"Branch_{i}", branch)
        self.count = len(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([getattr(self, f"Branch_{i}")(x) for i in range(self.count)], dim=1)


class InceptionResnetV1(nn.Module):
    """160x160 face -> ``dim``-d bottleneck features (before L2 normalisation)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = ConvReLU(3, 32, 3, stride=2, same=False)
        self.Conv2d_2a_3x3 = ConvReLU(32, 32, 3, same=False)
        self.Conv2d_2b_3x3 = ConvReLU(32, 64, 3)
        self.MaxPool_3a_3x3 = nn.MaxPool2d(3, stride=2)
        self.Conv2d_3b_1x1 = ConvReLU(64, 80, 1, same=False)
        self.Conv2d_4a_3x3 = ConvReLU(80, 192, 3, same=False)
        self.Conv2d_4b_3x3 = ConvReLU(192, 256, 3, stride=2, same=False)
        self.Repeat = _seq(*((f"block35_{i}", block35()) for i in range(1, 6)))
        self.Mixed_6a = Concat(
            [
                _seq(("Conv2d_1a_3x3", ConvReLU(256, 384, 3, stride=2, same=False))),
                _seq(
                    ("Conv2d_0a_1x1", ConvReLU(256, 192, 1)),
                    ("Conv2d_0b_3x3", ConvReLU(192, 192, 3)),
                    ("Conv2d_1a_3x3", ConvReLU(192, 256, 3, stride=2, same=False)),
                ),
                nn.MaxPool2d(3, stride=2),
            ]
        )
        self.Repeat_1 = _seq(*((f"block17_{i}", block17()) for i in range(1, 11)))
        self.Mixed_7a = Concat(
            [
                _seq(
                    ("Conv2d_0a_1x1", ConvReLU(896, 256, 1)),
                    ("Conv2d_1a_3x3", ConvReLU(256, 384, 3, stride=2, same=False)),
                ),
                _seq(
                    ("Conv2d_0a_1x1", ConvReLU(896, 256, 1)),
                    ("Conv2d_1a_3x3", ConvReLU(256, 256, 3, stride=2, same=False)),
                ),
                _seq(
                    ("Conv2d_0a_1x1", ConvReLU(896, 256, 1)),
                    ("Conv2d_0b_3x3", ConvReLU(256, 256, 3)),
                    ("Conv2d_1a_3x3", ConvReLU(256, 256, 3, stride=2, same=False)),
                ),
                nn.MaxPool2d(3, stride=2),
            ]
        )
        self.Repeat_2 = _seq(*((f"block8_{i}", block8()) for i in range(1, 6)))
        self.Block8 = block8(scale=1.0, relu=False)
        self.Bottleneck = nn.Linear(1792, dim, bias=True)  # with its batch norm folded in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in list(self.children())[:-1]:
            x = stage(x)
        return self.Bottleneck(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def prewhiten(pixels: torch.Tensor) -> torch.Tensor:
    """FaceNet's per-image standardisation (TF ``per_image_standardization``)."""
    n = pixels[0].numel()
    mean = pixels.mean(dim=(1, 2, 3), keepdim=True)
    std = pixels.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
    return (pixels - mean) / torch.clamp(std, min=1.0 / n**0.5)


class FaceNet(nn.Module):
    """``[N,3,160,160]`` RGB 0..255 -> ``[N,dim]`` unit-length embeddings."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = InceptionResnetV1(dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(prewhiten(pixels)), dim=1, eps=1e-10)
