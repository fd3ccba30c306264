"""Export the trained detector to ONNX, check parity, measure COCO mAP, write the model folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from export.detector.evaluate import EVAL_PARAMS, coco_metrics, coco_results
from export.detector.model import Detector
from export.detector.threshold import best_f1_threshold
from export.scene_cards import LICENSE, recipe, source, training_data
from export.scene_publish import publish_scene_model
from export.scene_setup import SceneRun
from export.scene_tensors import letterbox_preprocess
from export.scenes.dataset import SceneRecord, read_split
from export.scenes.recipe import DEFAULT_COUNTS
from export.scenes.shapes import CLASSES

PARITY_ATOL = 0.05  # boxes are in pixels (up to 256); scores in [0, 1]


def publish(detector: Detector, run: SceneRun, model_store: Path, options: dict) -> Path:
    size = options["input_size"]
    chosen: dict[str, float] = {}

    def evaluate(onnx_path: Path, records: list[SceneRecord]) -> tuple[dict, dict]:
        results = coco_results(onnx_path, records, size)
        metrics = coco_metrics(
            run.root / "test" / "instances.json",
            results,
            [r.scene.image_id for r in records],
            list(CLASSES),
        )
        print(metrics.pop("summary", ""))
        print(f"test mAP@[.5:.95] {metrics['mAP']:.4f}  mAP@.5 {metrics['mAP50']:.4f}")
        val = read_split(run.root, "val")
        truth = json.loads((run.root / "val" / "instances.json").read_text())["annotations"]
        threshold, at_threshold = best_f1_threshold(coco_results(onnx_path, val, size), truth)
        print(
            f"default score threshold {threshold} (best F1 on {len(val)} val scenes): "
            f"{at_threshold}"
        )
        chosen["threshold"] = threshold
        return metrics, {"val_at_default_threshold": at_threshold}

    locations = detector.head.points.shape[0]
    return publish_scene_model(
        detector,
        run,
        model_store,
        options,
        output_names=["boxes", "scores"],
        parity_atol=PARITY_ATOL,
        labels=CLASSES,
        evaluate=evaluate,
        config=lambda metrics: config(options, metrics, locations, chosen["threshold"]),
    )


def config(
    options: dict, metrics: dict[str, Any], locations: int, threshold: float
) -> dict[str, Any]:
    size = options["input_size"]
    counts = {s: options[s] for s in DEFAULT_COUNTS}
    return {
        "name": options["name"],
        "task": "detection",
        "description": f"Shape detector ({len(CLASSES)} classes), FCOS-style on MobileNetV2, "
        f"letterbox {size}x{size}",
        "default_for_task": True,
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 3, size, size]}],
        "outputs": [
            {"name": "boxes", "datatype": "FP32", "shape": [-1, locations, 4]},
            {"name": "scores", "datatype": "FP32", "shape": [-1, locations, len(CLASSES)]},
        ],
        "preprocess": letterbox_preprocess(size),
        "postprocess": {
            "kind": "detection",
            "boxes_output": "boxes",
            "scores_output": "scores",
            "labels": "labels.txt",
            "box_format": "xyxy",
            "score_threshold": threshold,
            "iou_threshold": 0.5,
            "max_detections": 100,
            "pre_nms_top_k": 1000,
        },
        "batching": {
            "max_batch_size": 16,
            "cpu_max_batch_size": 4,
            "max_queue_delay_ms": 0,
            "max_queue_size": 256,
        },
        "runtime": {"warmup_batch_sizes": [1, 4]},
        "card": {
            "summary": "Detects circles, squares, triangles, stars, hexagons, crosses, rings and "
            "crescents: an anchor-free FCOS-style head (strides 8 and 16, depthwise-separable "
            "towers) on a MobileNetV2 backbone. Outputs raw per-location boxes and scores; "
            "NMS and letterbox undoing happen in the server.",
            "source": source(options["pretrained"]),
            "license": LICENSE,
            "training_data": training_data(counts, options["seed"]),
            "reproduce": "fovea export detector",
            "metrics": metrics,
            "notes": f"{recipe(options)} Metrics: pycocotools bbox evaluation on the "
            f"{counts['test']} test scenes, in original image pixels, through serving's "
            f"postprocessing (score >= {EVAL_PARAMS.score_threshold}, class-aware NMS at IoU "
            f"{EVAL_PARAMS.iou_threshold}, <= {EVAL_PARAMS.max_detections} per image). The "
            "default score_threshold maximises F1 (IoU >= 0.5, same class) on the val scenes; "
            "val_at_default_threshold gives it.",
        },
    }
