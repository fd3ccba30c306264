"""Export the trained segmenter to ONNX, check parity, measure mIoU, write the model folder."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from export.onnx_export import check_parity, export_onnx
from export.scene_cards import LICENSE, recipe, source, training_data
from export.scene_setup import SceneRun
from export.scene_tensors import letterbox_preprocess, preprocessor, scene_tensors
from export.scenes.dataset import read_split
from export.scenes.recipe import DEFAULT_COUNTS
from export.scenes.shapes import CLASSES
from export.segmenter.evaluate import confusion, iou_metrics
from export.segmenter.model import Segmenter
from export.store import write_bytes, write_config

LABELS = ("background", *CLASSES)
PARITY_ATOL = 1e-2  # on logits of magnitude ~10
PARITY_SCENES = 4


def publish(segmenter: Segmenter, run: SceneRun, model_store: Path, options: dict) -> Path:
    size = options["input_size"]
    records = read_split(run.root, "test")
    prep = preprocessor(size)
    sample = np.stack([scene_tensors(r, prep).pixels for r in records[:PARITY_SCENES]])
    folder = model_store / options["name"]
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(
            segmenter,
            (torch.from_numpy(sample[:1]),),
            Path(tmp) / "model.onnx",
            input_names=["pixels"],
            output_names=["logits"],
        )
        parity = check_parity(segmenter, onnx_path, {"pixels": sample}, atol=PARITY_ATOL)
        print(f"parity max |torch - onnxruntime| on {PARITY_SCENES} test scenes: {parity:.3g}")
        metrics = iou_metrics(confusion(onnx_path, records, size, len(LABELS)), list(LABELS))
        for name, iou in metrics["IoU_per_class"].items():
            print(f"IoU {name:<11} {iou:.4f}")
        print(
            f"test mIoU {metrics['mIoU']:.4f} (objects only {metrics['mIoU_objects']:.4f}), "
            f"pixel accuracy {metrics['pixel_accuracy']:.4f}"
        )
        write_bytes(folder / "1" / "model.onnx", onnx_path.read_bytes())
    write_bytes(folder / "labels.txt", ("\n".join(LABELS) + "\n").encode())
    metrics["parity_max_abs_diff"] = float(f"{parity:.2g}")
    metrics["images"] = len(records)
    write_config(folder, config(options, metrics))
    print(f"wrote {folder}")
    return folder


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
        "batching": {"max_batch_size": 16, "max_queue_delay_ms": 0, "max_queue_size": 256},
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
