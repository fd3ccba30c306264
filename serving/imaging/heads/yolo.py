"""YOLO heads as exported without NMS: centre boxes in model-input pixels plus class scores.

* Ultralytics v8/11 (``yolov8``): ``[4+C, A]`` per image -- attributes first, no objectness;
* YOLOv5 (``yolov5``): ``[A, 5+C]`` -- objectness after the box, class scores conditional on it.

Both reduce to per-anchor boxes and scores, then the shared thresholds and class-aware NMS
(:func:`serving.imaging.detection.detect`); Ultralytics' predict keeps one class per anchor,
which is ``multi_label: false``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from serving.core.config import BoxDetection
from serving.imaging.detection import DetectionParams, Detections, detect
from serving.imaging.heads.base import Frame, Head, Shapes, require, squeeze_to

EXPECTED_V8 = "Ultralytics v8/11 [4+C, A] per image: cx, cy, w, h, then C class scores"
EXPECTED_V5 = "YOLOv5 [A, 5+C] per image: cx, cy, w, h, objectness, then C class scores"


def decode_v8(
    out: Mapping[str, np.ndarray], post: BoxDetection, frame: Frame, params: DetectionParams
) -> Detections:
    assert post.output
    pred = squeeze_to(out[post.output], 2, post.output).T
    return detect(pred[:, :4], pred[:, 4:], frame.geometry, params, "cxcywh")


def decode_v5(
    out: Mapping[str, np.ndarray], post: BoxDetection, frame: Frame, params: DetectionParams
) -> Detections:
    assert post.output
    pred = squeeze_to(out[post.output], 2, post.output)
    scores = pred[:, 5:] * pred[:, 4:5]
    return detect(pred[:, :4], scores, frame.geometry, params, "cxcywh")


def check_v8(post: BoxDetection, shapes: Shapes, labels: int) -> None:
    assert post.output
    require(post.output, shapes[post.output], [4 + labels, None], EXPECTED_V8)


def check_v5(post: BoxDetection, shapes: Shapes, labels: int) -> None:
    assert post.output
    require(post.output, shapes[post.output], [None, 5 + labels], EXPECTED_V5)


V8 = Head(decode_v8, check_v8, EXPECTED_V8)
V5 = Head(decode_v5, check_v5, EXPECTED_V5)
