"""The default score threshold: the one with the best F1 on the validation scenes.

COCO mAP integrates over all thresholds; a server answering apps needs one default. It is
chosen on val (not test) by matching detections to ground truth at IoU >= 0.5, same class.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

CANDIDATES = np.round(np.arange(0.10, 0.80, 0.025), 3)


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    lt = np.maximum(box[:2], others[:, :2])
    rb = np.minimum(box[2:], others[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    union = np.prod(box[2:] - box[:2]) + np.prod(others[:, 2:] - others[:, :2], axis=1) - inter
    return inter / np.maximum(union, 1e-9)


def best_f1_threshold(
    results: list[dict[str, Any]], truth: list[dict[str, Any]]
) -> tuple[float, dict[str, float]]:
    """``results`` and ``truth`` in COCO form (bbox x, y, w, h); returns the threshold and its
    precision, recall and F1."""
    gt: dict[tuple[int, int], list[np.ndarray]] = defaultdict(list)
    for a in truth:
        x, y, w, h = a["bbox"]
        gt[(a["image_id"], a["category_id"])].append(np.array([x, y, x + w, y + h]))
    best = (0.0, {"precision": 0.0, "recall": 0.0, "f1": -1.0})
    for threshold in CANDIDATES:
        kept = sorted((r for r in results if r["score"] >= threshold), key=lambda r: -r["score"])
        used: dict[tuple[int, int], np.ndarray] = {
            k: np.zeros(len(v), dtype=bool) for k, v in gt.items()
        }
        hits = 0
        for r in kept:
            key = (r["image_id"], r["category_id"])
            if key not in gt:
                continue
            x, y, w, h = r["bbox"]
            overlaps = _iou(np.array([x, y, x + w, y + h]), np.stack(gt[key]))
            overlaps[used[key]] = 0
            j = int(overlaps.argmax())
            if overlaps[j] >= 0.5:
                used[key][j] = True
                hits += 1
        precision = hits / max(len(kept), 1)
        recall = hits / max(len(truth), 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-9)
        if f1 > best[1]["f1"]:
            best = (
                float(threshold),
                {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)},
            )
    return best
