"""Train a classifier on an ImageFolder directory and write it into the model store.

    fovea train classifier DATA_DIR --name NAME [--finetune-blocks K] [--url http://...]

Steps, each reading like torchvision's references: scan and split the folder (stratified,
seeded); run the frozen ImageNet MobileNetV2 trunk once per image (cached,
:mod:`export.train_folder.features`); train a linear classifier, and optionally the last ``K``
backbone blocks, on the cached features with the shared resumable loop
(:mod:`export.training`); measure on the held-out split; export the whole network with the same
CAM and embedding outputs as the ImageNet model, parity-checked; write the folder with its
config, labels, card and confusion matrix; optionally ask a running server to load it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import shlex
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from export import classifier
from export.onnx_export import check_parity, export_onnx
from export.store import write_bytes, write_config
from export.train_folder import dataset, features, model, report
from export.training import Schedule, train
from serving.core.config import Preprocess
from serving.imaging.preprocess import ImagePreprocessor

log = logging.getLogger(__name__)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CROP_FRACTION = 0.875  # torchvision's 224-of-256 centre crop
PARITY_ATOL = 1e-3
PARITY_IMAGES = 8


class HotLoadError(RuntimeError):
    """The model was written, but the running server did not load it."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data_dir", type=Path, help="one sub-folder of images per class")
    parser.add_argument("--name", required=True, help="model name (folder in the store)")
    parser.add_argument("--image-size", type=int, default=224, help="model input side (px)")
    parser.add_argument(
        "--resize",
        choices=("crop", "stretch"),
        default="crop",
        help="crop: shorter side to size/0.875 then centre crop (photos); "
        "stretch: whole image to size x size (small centred images such as Fashion-MNIST)",
    )
    parser.add_argument("--val-fraction", type=float, default=0.2, help="held out per class")
    parser.add_argument(
        "--finetune-blocks",
        type=int,
        default=0,
        choices=range(0, 6),
        metavar="K",
        help="also train the last K of MobileNetV2's 19 feature blocks (default 0: linear only)",
    )
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--url", help="a running server to hot-load the model into (POST .../repository/.../load)"
    )


def preprocess_config(size: int, resize: str) -> dict[str, Any]:
    if resize == "crop":
        geometry: dict[str, Any] = {
            "resize": {"mode": "shorter_side", "size": round(size / CROP_FRACTION)},
            "crop": {"width": size, "height": size},
        }
    else:
        geometry = {"resize": {"mode": "exact", "width": size, "height": size}}
    return {"input": "pixels", **geometry, "normalize": {"mean": list(MEAN), "std": list(STD)}}


def build(
    model_store: Path,
    cache: Path,
    *,
    data_dir: Path,
    name: str,
    image_size: int,
    resize: str,
    val_fraction: float,
    finetune_blocks: int,
    epochs: float,
    batch_size: int,
    lr: float,
    dropout: float,
    seed: int,
    url: str | None,
    threads: int = 1,
    command: str = "",
) -> Path:
    folder_data = dataset.scan(data_dir)
    labels = folder_data.labels()
    train_idx, val_idx = dataset.split(labels, val_fraction, seed, folder_data.classes)
    names = folder_data.classes
    print(
        f"{data_dir}: {len(folder_data.samples)} images in {len(names)} classes; "
        f"train {len(train_idx)}, val {len(val_idx)}"
    )
    torch.manual_seed(seed)
    backbone = classifier.load_mobilenet_v2(cache).features
    cut = model.BLOCKS - finetune_blocks
    prep_dict = preprocess_config(image_size, resize)
    preprocessor = ImagePreprocessor(
        Preprocess.model_validate(prep_dict), max_pixels=features.MAX_PIXELS
    )
    settings = {
        "size": image_size,
        "preprocess": prep_dict,
        "cut": cut,
        "weights": classifier.WEIGHTS.sha256,
    }
    key = features.cache_key(folder_data.samples, settings)
    work = cache / "train_features" / key
    trunk = features.Trunk(backbone[:cut], pooled=finetune_blocks == 0).eval()
    cached = features.extract(folder_data.samples, preprocessor, trunk, image_size, work, threads)

    head = model.Head(backbone[cut:], 1280, len(names), dropout)
    for p in head.backbone.parameters():
        p.requires_grad_(finetune_blocks > 0)
    steps = max(1, math.ceil(epochs * len(train_idx) / batch_size))
    schedule = Schedule(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        backbone_lr_factor=0.1,
        warmup_steps=min(50, steps // 10),
        seed=seed,
        log_every=max(1, steps // 20),
        checkpoint_every=max(1, steps // 10),
    )
    targets = torch.from_numpy(labels)
    loss = nn.CrossEntropyLoss()

    def loss_fn(indices: np.ndarray) -> dict[str, torch.Tensor]:
        rows = np.sort(train_idx[indices])
        x = torch.from_numpy(np.asarray(cached[rows], dtype=np.float32))
        return {"ce": loss(head(x), targets[rows])}

    run = hashlib.sha256(json.dumps([schedule.__dict__, dropout], default=str).encode())
    train(head, loss_fn, len(train_idx), schedule, work / f"head-{run.hexdigest()[:12]}.pt")

    predicted = predict(head, cached, val_idx)
    matrix = report.confusion(labels[val_idx], predicted, len(names))
    measured = report.metrics(matrix, names)
    print(f"held-out accuracy {measured['val_accuracy']:.4f} on {len(val_idx)} images")
    for cls, acc in measured["val_per_class_accuracy"].items():
        print(f"  {cls}: {acc:.3f}")

    full = model.full_model(backbone, head)
    folder = model_store / name
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(
            full,
            (torch.zeros(1, 3, image_size, image_size),),
            Path(tmp) / "model.onnx",
            input_names=["pixels"],
            output_names=list(classifier.OUTPUTS),
        )
        rng = np.random.default_rng(seed)
        random = rng.standard_normal((2, 3, image_size, image_size), dtype=np.float32)
        photos = np.stack(
            [
                preprocessor(folder_data.samples[i].path.read_bytes()).tensor
                for i in val_idx[:PARITY_IMAGES]
            ]
        )
        parity = max(
            check_parity(full, onnx_path, {"pixels": x}, atol=PARITY_ATOL, label=label)
            for label, x in (("random", random), ("val images", photos))
        )
        print(f"parity max |torch - onnxruntime| {parity:.3g} (atol {PARITY_ATOL:g})")
        write_bytes(folder / "1" / "model.onnx", onnx_path.read_bytes())
    cells = full(torch.zeros(1, 3, image_size, image_size))[1].shape[-1]
    write_bytes(folder / "labels.txt", ("\n".join(names) + "\n").encode())
    write_bytes(folder / classifier.CLASS_WEIGHTS, classifier.npy_bytes(full.class_weights()))
    write_bytes(
        folder / "confusion_matrix.png",
        report.confusion_png(matrix, names, f"{name}: held-out split ({len(val_idx)} images)"),
    )
    measured["parity_max_abs_diff"] = float(f"{parity:.2g}")
    description = {
        "data": str(data_dir),
        "train_images": len(train_idx),
        "classes": len(names),
        "image_size": image_size,
        "finetune_blocks": finetune_blocks,
        "steps": steps,
    }
    write_config(
        folder, config(name, names, prep_dict, image_size, cells, measured, description, command)
    )
    print(f"wrote {folder}")
    if url:
        hot_load(url, name)
    return folder


def predict(head: model.Head, cached: np.ndarray, indices: np.ndarray) -> np.ndarray:
    head.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(indices), 256):
            rows = indices[start : start + 256]
            x = torch.from_numpy(np.asarray(cached[rows], dtype=np.float32))
            out.append(head(x).argmax(dim=1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def config(
    name: str,
    names: list[str],
    prep: dict[str, Any],
    size: int,
    cells: int,
    measured: dict[str, Any],
    about: dict[str, Any],
    command: str,
) -> dict[str, Any]:
    tuned = about["finetune_blocks"]
    return {
        "name": name,
        "task": "classification",
        "description": f"{len(names)}-class classifier trained from {about['data']}",
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 3, size, size]}],
        "outputs": classifier.feature_outputs(len(names), 1280, cells),
        "preprocess": prep,
        "postprocess": {
            "kind": "softmax_topk",
            "output": "logits",
            "labels": "labels.txt",
            "default_top_k": min(5, len(names)),
        },
        **classifier.FEATURE_CONFIG,
        "batching": {"max_batch_size": 32, "max_queue_delay_ms": 0, "max_queue_size": 256},
        "card": {
            "summary": f"ImageNet MobileNetV2 features ({size}x{size}) with a new linear "
            f"classifier"
            + (f" and its last {tuned} blocks fine-tuned" if tuned else "")
            + f", trained by `fovea train classifier` for {about['steps']} steps on "
            f"{about['train_images']} images",
            "source": f"backbone: {classifier.WEIGHTS.requirement} (torchvision IMAGENET1K_V1, "
            f"sha256 {classifier.WEIGHTS.sha256}); classifier trained here",
            "license": "backbone weights: non-commercial research use (see mobilenet_v2's card); "
            "the training images' terms are their owner's",
            "training_data": f"{about['data']}: {about['train_images']} training images; "
            f"held-out split of {measured['val_images']} images (stratified, seeded)",
            "reproduce": command or f"fovea train classifier {about['data']} --name {name}",
            "metrics": measured,
            "notes": "Accuracy is on the held-out split, computed from the cached float16 "
            "trunk features; the exported graph matches PyTorch within the stated parity. "
            "confusion_matrix.png in this folder plots val_confusion_matrix.",
        },
    }


def hot_load(url: str, name: str) -> None:
    """``POST {url}/v2/repository/models/{name}/load``; the server must serve this store."""
    endpoint = f"{url.rstrip('/')}/v2/repository/models/{name}/load"
    request = urllib.request.Request(endpoint, data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            print(f"loaded into {url}: HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        raise HotLoadError(
            f"{endpoint} answered {exc.code}: {exc.read().decode(errors='replace')}"
        ) from exc
    except urllib.error.URLError as exc:
        raise HotLoadError(f"cannot reach {endpoint}: {exc.reason}") from exc


def command_line(argv: list[str]) -> str:
    return "fovea train classifier " + " ".join(shlex.quote(a) for a in argv)
