"""Models with their post-processing inside (torchvision SSD/SSDlite, Faster R-CNN, RetinaNet,
FCOS exports): final ``boxes [K, 4]`` xyxy in model-input pixels, ``scores [K]`` and integer
``labels [K]``, K varying per image. Only thresholds, class filter and the mapping back to the
original image remain; NMS already ran inside the model."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from serving.core.config import BoxDetection
from serving.imaging.detection import DetectionParams, Detections
from serving.imaging.heads.base import (
    Frame,
    Head,
    Shapes,
    finish,
    keep_classes,
    require,
    squeeze_to,
)

EXPECTED = "boxes [K, 4] xyxy, scores [K], labels [K] (class ids), K detections per image"


def decode(
    out: Mapping[str, np.ndarray], post: BoxDetection, frame: Frame, params: DetectionParams
) -> Detections:
    assert post.boxes_output and post.scores_output and post.labels_output
    boxes = squeeze_to(out[post.boxes_output], 2, post.boxes_output).reshape(-1, 4)
    scores = squeeze_to(out[post.scores_output], 1, post.scores_output)
    class_ids = squeeze_to(out[post.labels_output], 1, post.labels_output).astype(np.int64)
    keep = (scores >= params.score_threshold) & keep_classes(class_ids, params)
    return finish(boxes[keep], scores[keep], class_ids[keep], frame, params.max_detections)


def check(post: BoxDetection, shapes: Shapes, labels: int) -> None:
    assert post.boxes_output and post.scores_output and post.labels_output
    require(post.boxes_output, shapes[post.boxes_output], [None, 4], EXPECTED)
    require(post.scores_output, shapes[post.scores_output], [None], EXPECTED)
    require(post.labels_output, shapes[post.labels_output], [None], EXPECTED)


HEAD = Head(decode, check, EXPECTED)
