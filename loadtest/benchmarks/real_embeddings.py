"""Embeddings of real images for the search benchmark's recall rows.

    nice -n 10 python -m loadtest.benchmarks.real_embeddings --images 10000 --out EMB.npy

Fashion-MNIST's test photos (Debian ``dataset-fashion-mnist``) through the served
``mobilenet_v2``'s declared embedding output (pooled penultimate features, L2-normalised), with
the server's own preprocessing, in batches through ONNX Runtime.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from export.train_folder.fashion_mnist import load, png
from serving.core.config import load_config
from serving.core.runtime import OnnxModel
from serving.imaging.preprocess import ImagePreprocessor

ROOT = Path(__file__).resolve().parents[2]
BATCH = 32


def embed(model_name: str, images: np.ndarray) -> np.ndarray:
    folder = ROOT / "model_store" / model_name
    config = load_config(folder / "config.yaml")
    assert config.preprocess is not None and config.embedding is not None
    version = config.default_version or max(
        int(d.name) for d in folder.iterdir() if d.name.isdigit()
    )
    model = OnnxModel(folder / str(version) / "model.onnx", config)
    pre = ImagePreprocessor(config.preprocess, max_pixels=10**8)
    out = []
    for lo in range(0, len(images), BATCH):
        pixels = np.stack([pre(png(im)).tensor for im in images[lo : lo + BATCH]])
        out.append(model.run({config.preprocess.input: pixels})[config.embedding.output])
    vectors = np.concatenate(out).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--model", default="mobilenet_v2")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    images, _ = load("test")
    t = time.perf_counter()
    vectors = embed(args.model, images[: args.images])
    np.save(args.out, vectors)
    print(f"{len(vectors)} x {vectors.shape[1]} embeddings in {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
