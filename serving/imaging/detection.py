"""Detector postprocessing: raw per-location predictions -> final boxes in original pixels.

Models export fixed-size ``boxes [N, 4]`` and ``scores [N, C]`` per image; everything after
that is here, so thresholds stay request options and any detector with that output shape is
served without code: candidates over the score threshold, class-aware NMS
(:func:`serving.imaging.nms.nms` grouped by class), then mapping back through the letterbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from serving.imaging.nms import nms
from serving.imaging.transforms import Geometry

BoxFormat = Literal["xyxy", "cxcywh"]


@dataclass(frozen=True)
class DetectionParams:
    score_threshold: float
    iou_threshold: float
    max_detections: int
    pre_nms_top_k: int
    classes: frozenset[int] | None = None  # keep only these class ids; all when None
    multi_label: bool = True  # False: a location proposes only its best class (Ultralytics)


@dataclass(frozen=True)
class Detections:
    boxes: np.ndarray  # [M, 4] float32 x1, y1, x2, y2
    scores: np.ndarray  # [M] float32, best first
    class_ids: np.ndarray  # [M] int64


def to_xyxy(boxes: np.ndarray, box_format: BoxFormat) -> np.ndarray:
    """``[..., 4]`` boxes in ``box_format`` -> corners."""
    if box_format == "xyxy":
        return boxes
    centre, half = boxes[..., :2], boxes[..., 2:] / 2
    return np.concatenate([centre - half, centre + half], axis=-1)


def candidates(scores: np.ndarray, params: DetectionParams) -> tuple[np.ndarray, np.ndarray]:
    """(location, class) pairs scoring at least the threshold, at most ``pre_nms_top_k`` of
    the best. One location may propose several classes, as in FCOS/RetinaNet decoding, unless
    ``multi_label`` is off."""
    if params.classes is not None:
        allowed = np.zeros(scores.shape[1], dtype=bool)
        allowed[[c for c in params.classes if 0 <= c < scores.shape[1]]] = True
        scores = np.where(allowed, scores, -np.inf)
    if params.multi_label:
        locations, class_ids = np.nonzero(scores >= params.score_threshold)
    else:
        best = scores.argmax(axis=1)
        locations = np.flatnonzero(scores[np.arange(len(scores)), best] >= params.score_threshold)
        class_ids = best[locations]
    if len(locations) > params.pre_nms_top_k:
        values = scores[locations, class_ids]
        best = np.argpartition(-values, params.pre_nms_top_k - 1)[: params.pre_nms_top_k]
        locations, class_ids = locations[best], class_ids[best]
    return locations, class_ids


def detect(
    boxes: np.ndarray,
    scores: np.ndarray,
    geometry: Geometry,
    params: DetectionParams,
    box_format: BoxFormat = "xyxy",
) -> Detections:
    """One image's ``boxes [N, 4]`` (model pixels) and ``scores [N, C]`` -> final detections."""
    locations, class_ids = candidates(scores, params)
    picked = to_xyxy(boxes[locations].astype(np.float32), box_format)
    values = scores[locations, class_ids].astype(np.float32)
    keep = nms(picked, values, params.iou_threshold, groups=class_ids)[: params.max_detections]
    return Detections(
        boxes=geometry.boxes_to_original(picked[keep]).astype(np.float32),
        scores=values[keep],
        class_ids=class_ids[keep].astype(np.int64),
    )
