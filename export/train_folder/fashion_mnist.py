"""Fashion-MNIST (Xiao et al., 2017) from Debian's ``dataset-fashion-mnist``: an ImageFolder
to train on, and the official test set scored through the exported model.

    python -m export.train_folder.fashion_mnist folder DEST [--per-class N]
    python -m export.train_folder.fashion_mnist evaluate MODEL_FOLDER [--json OUT] [--record]

``evaluate`` scores the 10,000 test images with the model folder exactly as the server would:
PNG bytes through the config's preprocessing, then ONNX Runtime, top-1 against the labels.
``--record`` writes the result into the model card, with the whole rebuild recipe.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from export.train_folder.scoring import score

SOURCE = Path("/usr/share/datasets/fashion-mnist")  # apt-get install dataset-fashion-mnist
CLASSES = (
    "t-shirt_top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle_boot",
)  # fmt: skip


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
    images, labels = load("test")
    return score(folder, [png(im) for im in images], [CLASSES[i] for i in labels], threads)


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
    score.add_argument("--record", action="store_true", help="add the result to the model card")
    score.add_argument("--train-command", default="", help="with --record: how it was trained")
    args = parser.parse_args(argv)
    if args.command == "folder":
        write_folder(args.dest, args.per_class)
        return
    result = evaluate(args.model_folder, args.threads)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.record:
        record(args.model_folder, result, args.train_command)


def record(folder: Path, result: dict[str, object], train_command: str) -> None:
    """Put the official test-set result and the full rebuild recipe into the card."""
    import yaml

    from export.store import write_config

    config = yaml.safe_load((folder / "config.yaml").read_text())
    card = config["card"]
    card["metrics"]["fashion_mnist_test"] = result
    card["reproduce"] = " && ".join(
        [
            "apt-get install -y dataset-fashion-mnist",
            "python -m export.train_folder.fashion_mnist folder DATA --per-class 2000",
            train_command or card["reproduce"],
            f"python -m export.train_folder.fashion_mnist evaluate {folder} --record",
        ]
    )
    card["training_data"] = (
        "Fashion-MNIST (Xiao et al., 2017; MIT licence) from Debian's dataset-fashion-mnist: the "
        "first 2000 training images of each class (20,000), 10% held out as val; scored on the "
        f"official 10,000-image test set. {card['training_data']}"
    )
    write_config(folder, config)


if __name__ == "__main__":
    main()
