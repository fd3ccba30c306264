"""Non-maximum suppression: keep the best box of each overlapping cluster, per group.

One implementation for every detector. Groups (classes, images, pyramid levels) never suppress
each other: each group's boxes are shifted into a region of their own first, so one pass serves
all groups at once.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Overlap = Literal["iou", "min"]


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    *,
    groups: np.ndarray | None = None,
    overlap: Overlap = "iou",
) -> np.ndarray:
    """Indices of the kept boxes, best score first.

    ``boxes`` is ``[K, 4]`` ``x1, y1, x2, y2``. A box is dropped when its overlap with a kept,
    better box of its group exceeds ``threshold``; overlap is intersection over union, or over
    the smaller box's area (``"min"``: also drops a box lying inside a bigger one).
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    boxes = boxes.astype(np.float64)
    if groups is not None:
        span = float(boxes.max() - boxes.min()) + 1.0
        boxes = boxes + (groups.astype(np.float64) * span)[:, None]
    x1, y1, x2, y2 = boxes.T
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        w = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = w * h
        if overlap == "min":
            denom = np.minimum(area[best], area[rest])
        else:
            denom = area[best] + area[rest] - inter
        ratio = np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)
        order = rest[ratio <= threshold]
    return np.asarray(keep, dtype=np.int64)
