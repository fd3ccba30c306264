"""DETR-style set prediction: one box per query, no NMS.

``logits [Q, C+1]`` (the last class is "no object") and ``boxes [Q, 4]`` as centre x, y, width,
height normalised to the model input. As DETR's own ``PostProcess``: softmax, drop the
no-object column, each query's best class and its probability, boxes scaled to pixels.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from serving.core.config import BoxDetection
from serving.imaging.detection import DetectionParams, Detections, to_xyxy
from serving.imaging.heads.base import (
    Frame,
    Head,
    Shapes,
    finish,
    keep_classes,
    require,
    squeeze_to,
)
from serving.imaging.scores import softmax

EXPECTED = "logits [Q, C+1] (last: no object) and boxes [Q, 4] normalised cxcywh per image"


def decode(
    out: Mapping[str, np.ndarray], post: BoxDetection, frame: Frame, params: DetectionParams
) -> Detections:
    assert post.logits_output and post.boxes_output
    logits = squeeze_to(out[post.logits_output], 2, post.logits_output)
    boxes = squeeze_to(out[post.boxes_output], 2, post.boxes_output)
    probs = softmax(logits.astype(np.float32), axis=-1)[:, :-1]
    class_ids = probs.argmax(axis=1)
    scores = probs[np.arange(len(probs)), class_ids]
    width, height = frame.input_size
    pixels = to_xyxy(boxes.astype(np.float32), "cxcywh") * np.array(
        [width, height, width, height], dtype=np.float32
    )
    keep = (scores >= params.score_threshold) & keep_classes(class_ids, params)
    return finish(pixels[keep], scores[keep], class_ids[keep], frame, params.max_detections)


def check(post: BoxDetection, shapes: Shapes, labels: int) -> None:
    assert post.logits_output and post.boxes_output
    require(post.logits_output, shapes[post.logits_output], [None, labels + 1], EXPECTED)
    require(post.boxes_output, shapes[post.boxes_output], [None, 4], EXPECTED)


HEAD = Head(decode, check, EXPECTED)
