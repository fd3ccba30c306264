"""Export the trained segmenter to ONNX, check parity, measure mIoU, write the model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from export.scene_cards import LICENSE, recipe, source, training_data
from export.scene_publish import publish_scene_model
from export.scene_setup import SceneRun
from export.scene_tensors import letterbox_preprocess
from export.scenes.dataset import SceneRecord
from export.scenes.recipe import DEFAULT_COUNTS
from export.scenes.shapes import CLASSES
from export.segmenter.evaluate import confusion, iou_metrics
from export.segmenter.model import Segmenter

LABELS = ("background", *CLASSES)
PARITY_ATOL = 1e-2  # on logits of magnitude ~10


def publish(segmenter: Segmenter, run: SceneRun, model_store: Path, options: dict) -> Path:
    size = options["input_size"]

    def evaluate(onnx_path: Path, records: list[SceneRecord]) -> tuple[dict, dict]:
        metrics = iou_metrics(confusion(onnx_path, records, size, len(LABELS)), list(LABELS))
        for name, iou in metrics["IoU_per_class"].items():
            print(f"IoU {name:<11} {iou:.4f}")
        print(
            f"test mIoU {metrics['mIoU']:.4f} (objects only {metrics['mIoU_objects']:.4f}), "
            f"pixel accuracy {metrics['pixel_accuracy']:.4f}"
        )
        return metrics, {"images": len(records)}

    return publish_scene_model(
        segmenter,
        run,
        model_store,
        options,
        output_names=["logits"],
        parity_atol=PARITY_ATOL,
        labels=LABELS,
        evaluate=evaluate,
        config=lambda metrics: config(options, metrics),
    )


def config(options: dict, metrics: dict[str, Any]) -> dict[str, Any]:
    size = options["input_size"]
    counts = {s: options[s] for s in DEFAULT_COUNTS}
    return {
        "name": options["name"],
        "task": "segmentation",
        "description": f"Shape segmenter ({len(CLASSES)} classes + background), LR-ASPP on "
        f"MobileNetV2, letterbox {size}x{size}",
        "default_for_task": True,
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 3, size, size]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, len(LABELS), size, size]}],
        "preprocess": letterbox_preprocess(size),
        "postprocess": {"kind": "segmentation", "output": "logits", "labels": "labels.txt"},
        "batching": {
            "max_batch_size": 16,
            "cpu_max_batch_size": 4,
            "max_queue_delay_ms": 0,
            "max_queue_size": 256,
        },
        "runtime": {"warmup_batch_sizes": [1, 4]},
        "card": {
            "summary": "Per-pixel classes (background + 8 shapes): an LR-ASPP head (stride 8 "
            "and 16 features) on a MobileNetV2 backbone; logits at the input resolution, argmax "
            "and letterbox undoing in the server.",
            "source": source(options["pretrained"]),
            "license": LICENSE,
            "training_data": training_data(counts, options["seed"]),
            "reproduce": "fovea export segmenter",
            "metrics": metrics,
            "notes": f"{recipe(options)} Metrics: IoU from one confusion matrix over all "
            f"pixels of the {counts['test']} test scenes at their original resolution, through "
            "serving's postprocessing; mIoU averages the 9 classes including background, "
            "mIoU_objects the 8 shapes.",
        },
    }
