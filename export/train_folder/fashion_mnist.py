"""Fashion-MNIST (Xiao et al., 2017) from Debian's ``dataset-fashion-mnist``: an ImageFolder
to train on, and the official test set scored through the exported model.

    python -m export.train_folder.fashion_mnist folder DEST [--per-class N]
    python -m export.train_folder.fashion_mnist evaluate MODEL_FOLDER [--json OUT]

``evaluate`` scores the 10,000 test images with the model folder exactly as the server would:
PNG bytes through the config's preprocessing, then ONNX Runtime, top-1 against the labels.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image
from tqdm import tqdm

from serving.core.config import load_config
from serving.imaging.preprocess import ImagePreprocessor

SOURCE = Path("/usr/share/datasets/fashion-mnist")  # apt-get install dataset-fashion-mnist
CLASSES = (
    "t-shirt_top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle_boot",
)  # fmt: skip
BATCH = 64


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip): unsigned bytes with the shape its header gives."""
    data = gzip.decompress(path.read_bytes())
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    if not (SOURCE / f"{prefix}-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"{SOURCE} not found: apt-get install -y dataset-fashion-mnist")
    images = read_idx(SOURCE / f"{prefix}-images-idx3-ubyte.gz")
    return images, read_idx(SOURCE / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_folder(dest: Path, per_class: int | None) -> None:
    """The first ``per_class`` training images of each class (all if None) as PNGs."""
    images, labels = load("train")
    for c, name in enumerate(CLASSES):
        (dest / name).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(labels == c)[:per_class]:
            path = dest / name / f"{i:05d}.png"
            if not path.exists():
                path.write_bytes(png(images[i]))
    print(f"wrote {dest}")


def evaluate(folder: Path, threads: int) -> dict[str, object]:
    config = load_config(folder / "config.yaml")
    assert config.preprocess is not None
    prep = ImagePreprocessor(config.preprocess, max_pixels=10_000_000)
    names = (folder / "labels.txt").read_text().split()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        str(folder / "1" / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )
    images, labels = load("test")
    expected = np.array([names.index(CLASSES[i]) for i in labels])
    started, predicted = time.perf_counter(), []
    for start in tqdm(range(0, len(images), BATCH), desc="test set", unit="batch"):
        pixels = np.stack([prep(png(im)).tensor for im in images[start : start + BATCH]])
        (logits,) = session.run(["logits"], {"pixels": pixels})
        predicted.append(logits.argmax(axis=1))
    seconds = time.perf_counter() - started
    hits = np.concatenate(predicted) == expected
    return {
        "model": config.name,
        "test_images": len(images),
        "test_accuracy": round(float(hits.mean()), 4),
        "test_per_class_accuracy": {
            CLASSES[c]: round(float(hits[labels == c].mean()), 4) for c in range(len(CLASSES))
        },
        "evaluate_seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    folder = sub.add_parser("folder", help="write the training images as an ImageFolder")
    folder.add_argument("dest", type=Path)
    folder.add_argument("--per-class", type=int)
    score = sub.add_parser("evaluate", help="official test-set accuracy of a model folder")
    score.add_argument("model_folder", type=Path)
    score.add_argument("--threads", type=int, default=1)
    score.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.command == "folder":
        write_folder(args.dest, args.per_class)
        return
    result = evaluate(args.model_folder, args.threads)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
