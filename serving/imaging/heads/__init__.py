"""Detector output formats -> detections in original pixels, chosen by ``postprocess.format``.

One pure decoder per layout people export (see :class:`serving.core.config.BoxDetection`), looked
up in :data:`HEADS`; tasks and ``fovea models add`` go through this table, never per model.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from serving.core.config import BoxDetection
from serving.imaging.detection import DetectionParams, Detections
from serving.imaging.heads import dense, detr, prebuilt, yolo
from serving.imaging.heads.base import Frame, Head, LayoutError, Shapes

HEADS: dict[str, Head] = {
    "boxes_scores": dense.HEAD,
    "yolov8": yolo.V8,
    "yolov5": yolo.V5,
    "torchvision": prebuilt.HEAD,
    "detr": detr.HEAD,
}

__all__ = ["HEADS", "Frame", "Head", "LayoutError", "check_layout", "decode"]


def decode(
    out: Mapping[str, np.ndarray], post: BoxDetection, frame: Frame, params: DetectionParams
) -> Detections:
    """One image's outputs -> its detections, by the configured format."""
    return HEADS[post.format].decode(out, post, frame, params)


def check_layout(post: BoxDetection, shapes: Shapes, labels: int) -> None:
    """Raise :class:`LayoutError` naming what was found and what the format expects."""
    HEADS[post.format].check(post, shapes, labels)
