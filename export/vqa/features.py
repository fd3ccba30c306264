"""Image vectors from the frozen ImageNet MobileNetV2, computed once per split and cached.

Training never updates the CNN, so each image is encoded once (seconds per thousand images on
one core) instead of once per epoch. Pixels go through serving's own preprocessing, so the
trained head sees exactly what the server will feed the exported model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from export.classifier import load_mobilenet_v2
from serving.core.config import Preprocess
from serving.imaging.preprocess import ImagePreprocessor

log = logging.getLogger(__name__)

# easy-VQA images are 64x64; MobileNetV2 sees them stretched to its native 224x224.
PREPROCESS = {
    "input": "pixels",
    "resize": {"mode": "exact", "width": 224, "height": 224, "interpolation": "bilinear"},
    "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
}
D_V = 1280  # MobileNetV2's last feature map has 1280 channels


class PooledBackbone(nn.Module):
    """MobileNetV2's convolutional trunk + global average pool: image -> d_v vector."""

    def __init__(self, mobilenet: nn.Module) -> None:
        super().__init__()
        self.features = mobilenet.features

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.features(pixels).mean(dim=(2, 3))


def load_backbone(cache: Path) -> PooledBackbone:
    return PooledBackbone(load_mobilenet_v2(cache)).eval()


def preprocessor() -> ImagePreprocessor:
    return ImagePreprocessor(Preprocess.model_validate(PREPROCESS), max_pixels=1 << 24)


def image_features(
    backbone: PooledBackbone, paths: dict[int, Path], file: Path, *, batch_size: int = 64
) -> dict[int, np.ndarray]:
    """``{image_id: d_v vector}``, read from ``file`` if an earlier run wrote it."""
    if file.is_file():
        stored = np.load(file)
        return dict(zip(stored["ids"].tolist(), stored["features"], strict=True))
    prep = preprocessor()
    ids = sorted(paths)
    out = np.zeros((len(ids), D_V), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            pixels = np.stack([prep(paths[i].read_bytes()).tensor for i in chunk])
            out[start : start + len(chunk)] = backbone(torch.from_numpy(pixels)).numpy()
            log.info("features %s: %d/%d", file.name, start + len(chunk), len(ids))
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, ids=np.asarray(ids), features=out)
    return dict(zip(ids, out, strict=True))
