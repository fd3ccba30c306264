"""Mean IoU of an exported segmenter on original-resolution ground truth, through serving's
postprocessing (argmax, letterbox undone, nearest resize)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from export.scene_tensors import preprocessor, scene_tensors
from export.scenes.dataset import SceneRecord, load_pixels
from serving.imaging.segmentation import class_map, to_original

BATCH = 8


def confusion(
    onnx_path: Path, records: list[SceneRecord], input_size: int, num_classes: int
) -> np.ndarray:
    """``[truth, predicted]`` pixel counts over ``records``, at each image's own resolution."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    prep = preprocessor(input_size)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    for start in range(0, len(records), BATCH):
        chunk = records[start : start + BATCH]
        tensors = [scene_tensors(r, prep) for r in chunk]
        (logits,) = session.run(["logits"], {"pixels": np.stack([t.pixels for t in tensors])})
        for i, (record, t) in enumerate(zip(chunk, tensors, strict=True)):
            predicted = to_original(class_map(logits[i]), t.prepared.geometry)
            truth = load_pixels(record)[1]
            matrix += np.bincount(
                truth.ravel().astype(np.int64) * num_classes + predicted.ravel(),
                minlength=num_classes**2,
            ).reshape(num_classes, num_classes)
    return matrix


def iou_metrics(matrix: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Per-class IoU, their mean (with and without background) and pixel accuracy."""
    hits = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - hits
    iou = np.divide(hits, union, out=np.full_like(hits, np.nan), where=union > 0)
    return {
        "mIoU": round(float(np.nanmean(iou)), 4),
        "mIoU_objects": round(float(np.nanmean(iou[1:])), 4),
        "pixel_accuracy": round(float(hits.sum() / matrix.sum()), 4),
        "IoU_per_class": {n: round(float(v), 4) for n, v in zip(names, iou, strict=True)},
    }
