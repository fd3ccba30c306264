"""COCO mAP of an exported detector, measured with pycocotools through serving's postprocessing.

Predictions go through ONNX Runtime and :func:`serving.imaging.detection.detect`, so the
figures describe what ``POST /v1/detect`` returns, in original image pixels.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from export.scene_tensors import preprocessor, scene_tensors
from export.scenes.dataset import SceneRecord
from serving.imaging.detection import DetectionParams, detect

# COCO's protocol: a low threshold and up to 100 detections, so the whole PR curve is measured.
EVAL_PARAMS = DetectionParams(
    score_threshold=0.05, iou_threshold=0.6, max_detections=100, pre_nms_top_k=1000
)
BATCH = 16


def coco_results(
    onnx_path: Path,
    records: list[SceneRecord],
    input_size: int,
    params: DetectionParams = EVAL_PARAMS,
) -> list[dict[str, Any]]:
    """Detections of the model on ``records`` as COCO result dicts (category ids 1-based)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    prep = preprocessor(input_size)
    results = []
    for start in range(0, len(records), BATCH):
        chunk = records[start : start + BATCH]
        tensors = [scene_tensors(r, prep) for r in chunk]
        boxes, scores = session.run(
            ["boxes", "scores"], {"pixels": np.stack([t.pixels for t in tensors])}
        )
        for i, (record, t) in enumerate(zip(chunk, tensors, strict=True)):
            found = detect(boxes[i], scores[i], t.prepared.geometry, params)
            for box, score, cls in zip(found.boxes, found.scores, found.class_ids, strict=True):
                x1, y1, x2, y2 = (float(v) for v in box)
                results.append(
                    {
                        "image_id": record.scene.image_id,
                        "category_id": int(cls) + 1,
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "score": float(score),
                    }
                )
    return results


def coco_metrics(
    annotations: Path, results: list[dict[str, Any]], image_ids: list[int], class_names: list[str]
) -> dict[str, Any]:
    """pycocotools' bbox summary (mAP@[.5:.95], @.5, @.75, by size) and per-class AP."""
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(annotations))
        found = truth.loadRes(results) if results else None
    if found is None:
        return {"mAP": 0.0, "mAP50": 0.0, "detections": 0}
    evaluator = COCOeval(truth, found, iouType="bbox")
    evaluator.params.imgIds = image_ids
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = evaluator.stats
    precision = evaluator.eval["precision"]  # [iou, recall, class, area, max_dets]
    per_class = {}
    for k, name in enumerate(class_names):
        p = precision[:, :, k, 0, -1]
        per_class[name] = round(float(p[p > -1].mean()), 4) if (p > -1).any() else None
    return {
        "mAP": round(float(stats[0]), 4),
        "mAP50": round(float(stats[1]), 4),
        "mAP75": round(float(stats[2]), 4),
        "mAP_small": round(float(stats[3]), 4),
        "mAP_medium": round(float(stats[4]), 4),
        "mAP_large": round(float(stats[5]), 4),
        "AR100": round(float(stats[8]), 4),
        "AP_per_class": per_class,
        "images": len(image_ids),
        "summary": summary.getvalue(),
    }
