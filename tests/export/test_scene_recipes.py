"""``fovea export detector`` and ``... segmenter`` end to end on a tiny split, in seconds.

A random backbone keeps the test offline and fast; what is checked is the pipeline: scenes
composed, features cached, one shared training run, ONNX exported with parity, pycocotools and
mIoU evaluation, and model folders that the server's own config loader accepts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

pytest.importorskip("torch")
pytest.importorskip("pycocotools")

from export.cli import main
from serving.core.config import load_config

TINY = [
    "--train",
    "8",
    "--val",
    "2",
    "--test",
    "3",
    "--steps",
    "2",
    "--batch-size",
    "4",
    "--input-size",
    "64",
    "--no-pretrained",
]


def test_detector_and_segmenter_recipes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store, data = tmp_path / "store", tmp_path / "scenes"
    common = ["--model-store", str(store), "--cache", str(tmp_path / "cache")]
    assert main([*common, "detector", "--data", str(data), *TINY]) == 0
    first = capsys.readouterr().out
    assert "step 2/2" in first and "test mAP@[.5:.95]" in first
    assert main([*common, "segmenter", "--data", str(data), *TINY]) == 0
    second = capsys.readouterr().out
    assert "resumed from" in second and "step 1/2" not in second  # one shared training run
    assert "test mIoU" in second

    detector = load_config(store / "shapes_detector" / "config.yaml")
    assert detector.task == "detection" and detector.postprocess.kind == "detection"
    assert 0 <= detector.card.metrics["mAP"] <= 1
    labels = (store / "shapes_detector" / "labels.txt").read_text().split()
    assert len(labels) == 8

    segmenter = load_config(store / "shapes_segmenter" / "config.yaml")
    assert segmenter.task == "segmentation"
    assert set(segmenter.card.metrics["IoU_per_class"]) == {"background", *labels}

    pixels = np.zeros((2, 3, 64, 64), dtype=np.float32)  # the batch axis is dynamic
    boxes, scores = ort.InferenceSession(str(store / "shapes_detector" / "1" / "model.onnx")).run(
        None, {"pixels": pixels}
    )
    assert boxes.shape == (2, 80, 4) and scores.shape == (2, 80, 8)
    (logits,) = ort.InferenceSession(str(store / "shapes_segmenter" / "1" / "model.onnx")).run(
        None, {"pixels": pixels}
    )
    assert logits.shape == (2, 9, 64, 64)
    coco = json.loads((data / "test" / "instances.json").read_text())
    assert len(coco["images"]) == 3 and len(coco["categories"]) == 8
    assert all(a["segmentation"]["counts"] for a in coco["annotations"])
