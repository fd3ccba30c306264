"""Real architectures, exported to ONNX by their own libraries, with seeded random weights.

Random weights give degenerate outputs (every score equal) unless the layers that produce
scores and box offsets are scaled to a useful range: :func:`calibrate` measures each such
layer's output on a real photo and rescales it to a target spread, so scores vary per box and
the comparisons below mean something. Exports are cached in the temp dir under a key of this
file's text and the library versions, so only the first run pays for them.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

SEED = 0


def cache_dir() -> Path:
    versions = [importlib.metadata.version(p) for p in ("torch", "torchvision", "ultralytics")]
    key = hashlib.sha256((Path(__file__).read_text() + repr(versions)).encode()).hexdigest()
    folder = Path(tempfile.gettempdir()) / f"fovea-byom-{key[:16]}"
    folder.mkdir(exist_ok=True)
    return folder


def reinit(model: nn.Module, seed: int = SEED) -> nn.Module:
    """Kaiming-normal weights and zero biases everywhere, from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.Conv2d | nn.Linear):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * (2 / fan_in) ** 0.5)
                if mod.bias is not None:
                    mod.bias.zero_()
    return model.eval()


def calibrate(
    model: nn.Module, targets: Iterable[tuple[nn.Module, float]], run: Callable[[], object]
) -> None:
    """Scale each layer's weights so its output's standard deviation on ``run()`` is the target."""
    wanted = dict(targets)
    seen: dict[nn.Module, float] = {}

    def record(layer: nn.Module, inputs: object, output: torch.Tensor) -> None:
        seen.setdefault(layer, float(output.std()))

    hooks = [layer.register_forward_hook(record) for layer in wanted]
    with torch.no_grad():
        run()
    for h in hooks:
        h.remove()
    with torch.no_grad():
        for layer, std in seen.items():
            layer.weight.mul_(wanted[layer] / max(std, 1e-6))


def export(model: nn.Module, args: tuple, path: Path, **kwargs: object) -> Path:
    """torch.onnx's TorchScript exporter: the one torchvision's detectors export with."""
    if not path.exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tmp = path.with_suffix(".tmp")
            torch.onnx.export(model, args, str(tmp), opset_version=17, dynamo=False, **kwargs)
            tmp.rename(path)
    return path


def ssdlite(image: torch.Tensor) -> nn.Module:
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large

    model = reinit(
        ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=5)
    )
    head = model.head
    calibrate(
        model,
        [(seq[-1], 1.5) for seq in head.classification_head.module_list]
        + [(seq[-1], 0.2) for seq in head.regression_head.module_list],
        lambda: model([image]),
    )
    return model


def faster_rcnn(image: torch.Tensor) -> nn.Module:
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

    model = fasterrcnn_mobilenet_v3_large_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=4,
        min_size=320,
        max_size=480,
        rpn_pre_nms_top_n_test=200,
        rpn_post_nms_top_n_test=100,
        box_detections_per_img=50,
        box_score_thresh=0.2,
    )
    reinit(model)
    predictor, rpn = model.roi_heads.box_predictor, model.rpn.head
    calibrate(
        model,
        [
            (predictor.cls_score, 1.5),
            (predictor.bbox_pred, 0.2),
            (rpn.bbox_pred, 0.2),
            (rpn.cls_logits, 1.0),
        ],
        lambda: model([image]),
    )
    return model


def export_detector(model: nn.Module, name: str, height: int, width: int) -> Path:
    """torchvision detectors take a list of [3, H, W] images: no batch axis, any size. The
    TorchScript exporter bakes size-dependent constants into two-stage detectors (Faster
    R-CNN's RoI level mapping), so they are exact only at the example's size: serve them at it."""
    return export(
        model,
        ([torch.rand(3, height, width)],),
        cache_dir() / f"{name}.onnx",
        input_names=["image"],
        output_names=["boxes", "labels", "scores"],  # the order of torchvision's result dict
        dynamic_axes={
            "image": {1: "height", 2: "width"},
            "boxes": {0: "k"},
            "labels": {0: "k"},
            "scores": {0: "k"},
        },
    )


def segmenter(builder: str, image: torch.Tensor) -> nn.Module:
    from torchvision.models import segmentation

    model = getattr(segmentation, builder)(weights=None, weights_backbone=None, num_classes=5)
    reinit(model)
    head = model.classifier
    last = (
        head.high_classifier if hasattr(head, "high_classifier") else head[-1]
    )  # LR-ASPP, DeepLab
    calibrate(model, [(last, 1.0)], lambda: model(image))
    return model


def export_segmenter(model: nn.Module, name: str, size: int) -> Path:
    return export(
        model,
        (torch.rand(1, 3, size, size),),
        cache_dir() / f"{name}.onnx",
        input_names=["image"],
        output_names=["out"],
        dynamic_axes={"image": {0: "batch"}, "out": {0: "batch"}},
    )


class TinyDetr(nn.Module):
    """DETR's shape: CNN features -> transformer decoder over learned queries -> per query
    class logits (C + no-object) and sigmoid-normalised centre boxes."""

    def __init__(self, classes: int = 4, queries: int = 20, dim: int = 32) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, dim, 4, stride=4), nn.ReLU(), nn.Conv2d(dim, dim, 4, stride=4), nn.ReLU()
        )
        self.queries = nn.Parameter(torch.randn(queries, dim))
        layer = nn.TransformerDecoderLayer(dim, 4, 64, dropout=0.0, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, 2)
        self.class_embed = nn.Linear(dim, classes + 1)
        self.bbox_embed = nn.Linear(dim, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        memory = self.backbone(x).flatten(2).transpose(1, 2)
        q = self.queries.unsqueeze(0).expand(x.shape[0], -1, -1)
        h = self.decoder(q, memory)
        return self.class_embed(h), self.bbox_embed(h).sigmoid()


def tiny_detr(image: torch.Tensor) -> nn.Module:
    torch.manual_seed(SEED)
    model = TinyDetr().eval()
    calibrate(model, [(model.class_embed, 2.0), (model.bbox_embed, 1.0)], lambda: model(image))
    return model


def export_detr(model: nn.Module) -> Path:
    return export(
        model,
        (torch.rand(1, 3, 256, 256),),
        cache_dir() / "detr.onnx",
        input_names=["pixel_values"],
        output_names=["logits", "pred_boxes"],
        dynamic_axes={
            "pixel_values": {0: "batch"},
            "logits": {0: "batch"},
            "pred_boxes": {0: "batch"},
        },
    )


class TinySegformer(nn.Module):
    """SegFormer's output contract: class logits at a quarter of the input's size."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, classes, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def tiny_segformer(image: torch.Tensor) -> nn.Module:
    torch.manual_seed(SEED)
    model = TinySegformer().eval()
    calibrate(model, [(model.net[-1], 2.0)], lambda: model(image))
    return model


def export_segformer(model: nn.Module) -> Path:
    return export(
        model,
        (torch.rand(1, 3, 256, 256),),
        cache_dir() / "segformer.onnx",
        input_names=["pixel_values"],
        output_names=["logits"],
        dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}},
    )


def yolov8n(image: torch.Tensor, size: int = 320) -> tuple[nn.Module, Path]:
    """Ultralytics' own YOLOv8n from its YAML (3 classes), exported by Ultralytics (which writes
    names, imgsz and stride into the ONNX metadata)."""
    import yaml
    from ultralytics import YOLO
    from ultralytics.nn.tasks import yaml_model_load

    torch.manual_seed(SEED)
    spec = yaml_model_load("yolov8n.yaml")  # the YAML shipped in the package, 3 classes
    spec["nc"] = 3
    cfg = cache_dir() / "yolov8n.yaml"
    cfg.write_text(yaml.safe_dump({k: v for k, v in spec.items() if k != "yaml_file"}))
    yolo = YOLO(str(cfg), task="detect", verbose=False)
    yolo.model.names = {0: "circle", 1: "square", 2: "star"}
    net = yolo.model.eval()
    head = net.model[-1]
    square = nn.functional.interpolate(image, size=(size, size), mode="bilinear")  # stride 32
    calibrate(net, [(seq[-1], 2.0) for seq in head.cv3], lambda: net(square))
    with torch.no_grad():
        for seq in head.cv3:
            seq[-1].bias.fill_(-2.0)
    path = cache_dir() / "yolov8n.onnx"
    if not path.exists():
        with contextlib.chdir(cache_dir()):  # Ultralytics writes beside the (YAML) model name
            yolo.export(format="onnx", imgsz=size, dynamic=True, simplify=False, verbose=False)
    return net, path
