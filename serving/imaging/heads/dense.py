"""``boxes_scores``: per-location boxes ``[A, 4]`` and class scores ``[A, C]`` (FCOS-style
exports with decoding but no NMS inside), and the YOLO layouts, which reduce to it."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from serving.core.config import BoxDetection
from serving.imaging.detection import DetectionParams, Detections, detect
from serving.imaging.heads.base import Frame, Head, Shapes, require, squeeze_to

EXPECTED = "boxes [A, 4] and scores [A, C] per image, C = number of labels"


def decode(
    out: Mapping[str, np.ndarray], post: BoxDetection, frame: Frame, params: DetectionParams
) -> Detections:
    assert post.boxes_output and post.scores_output
    boxes = squeeze_to(out[post.boxes_output], 2, post.boxes_output)
    scores = squeeze_to(out[post.scores_output], 2, post.scores_output)
    return detect(boxes, scores, frame.geometry, params, post.box_format)


def check(post: BoxDetection, shapes: Shapes, labels: int) -> None:
    assert post.boxes_output and post.scores_output
    require(post.boxes_output, shapes[post.boxes_output], [None, 4], EXPECTED)
    require(post.scores_output, shapes[post.scores_output], [None, labels], EXPECTED)


HEAD = Head(decode, check, EXPECTED)
