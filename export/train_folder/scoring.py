"""Score a model folder on labelled images exactly as the server would run it: encoded bytes
through the config's preprocessing, ONNX Runtime, top-1 against the expected label."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from serving.core.config import load_config
from serving.imaging.preprocess import ImagePreprocessor

BATCH = 64


def score(
    folder: Path, images: Sequence[bytes], expected: Sequence[str], threads: int = 1
) -> dict[str, Any]:
    config = load_config(folder / "config.yaml")
    assert config.preprocess is not None
    prep = ImagePreprocessor(config.preprocess, max_pixels=100_000_000)
    names = (folder / "labels.txt").read_text().split("\n")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        str(folder / "1" / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )
    started, predicted = time.perf_counter(), []
    for start in tqdm(range(0, len(images), BATCH), desc="scoring", unit="batch"):
        pixels = np.stack([prep(data).tensor for data in images[start : start + BATCH]])
        (logits,) = session.run(["logits"], {"pixels": pixels})
        predicted.extend(names[i] for i in logits.argmax(axis=1))
    seconds = time.perf_counter() - started
    hits = np.array(predicted) == np.array(expected)
    classes = sorted(set(expected))
    return {
        "model": config.name,
        "images": len(images),
        "accuracy": round(float(hits.mean()), 4),
        "per_class_accuracy": {
            c: round(float(hits[np.array(expected) == c].mean()), 4) for c in classes
        },
        "seconds": round(seconds, 1),
    }
