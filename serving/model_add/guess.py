"""From what an ONNX file says to a model config: the task, the output format, the input
conventions, defaults of the framework that made it. Only what cannot be read from the file is
asked for (``--task``, ``--format``, ``--labels``); anything ambiguous is an error saying why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from serving.core.config import DETECTION_OUTPUTS, BoxDetection
from serving.imaging.heads import HEADS, LayoutError
from serving.model_add.graph import Graph, Tensor

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
TASK_OF_FORMAT = {
    **{f: "detection" for f in DETECTION_OUTPUTS},
    "segmentation": "segmentation",
    "classification": "classification",
}
FORMATS = sorted(TASK_OF_FORMAT)
# Defaults of the frameworks that export each format (Ultralytics predict: conf 0.25, iou 0.7,
# max_det 300, one class per anchor, up to 30000 boxes into NMS).
DETECTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "yolov8": {
        "score_threshold": 0.25,
        "iou_threshold": 0.7,
        "max_detections": 300,
        "pre_nms_top_k": 30000,
        "multi_label": False,
    },
    "boxes_scores": {"score_threshold": 0.3, "iou_threshold": 0.5},
    "torchvision": {"score_threshold": 0.5},
    "detr": {"score_threshold": 0.5},
}
DETECTION_DEFAULTS["yolov5"] = {**DETECTION_DEFAULTS["yolov8"], "iou_threshold": 0.45}


class CannotInfer(ValueError):
    """The file does not say enough (or matches no format); the message says what to pass."""


@dataclass(frozen=True)
class Choices:
    """What the user said; ``None`` means infer it."""

    name: str
    task: str | None = None
    format: str | None = None
    labels: list[str] | None = None
    score_threshold: float | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    pixel_range: str | None = None  # "0-1" or "0-255"
    bgr: bool = False
    max_batch_size: int | None = None
    size: tuple[int, int] | None = None  # (width, height) to resize to, for dynamic inputs


def propose(
    graph: Graph, choices: Choices, card: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The config (as a mapping for ``ModelConfig``) and the labels to write beside it."""
    image = _image_input(graph)
    fmt = choices.format or _guess_format(graph, choices.task)
    task = TASK_OF_FORMAT[fmt]
    if choices.task and choices.task != task:
        raise CannotInfer(
            f"format {fmt!r} serves task {TASK_OF_FORMAT[fmt]!r}, not {choices.task!r}"
        )
    labels = choices.labels or graph.class_names
    if not labels:
        raise CannotInfer(
            "cannot infer the class names: the file has no 'names' metadata; pass --labels FILE "
            "(one name per line, in class-id order)"
        )
    batch = _max_batch_size(image, fmt, choices)
    shapes = {o.name: (o.shape[1:] if batch > 0 else o.shape) for o in graph.outputs}
    postprocess = _postprocess(graph, fmt, shapes, labels, choices)
    config: dict[str, Any] = {
        "name": choices.name,
        "task": task,
        "inputs": [_spec(image, batch)],
        "outputs": [_spec(o, batch) for o in graph.outputs],
        "preprocess": _preprocess(graph, image, fmt, choices),
        "postprocess": postprocess,
        "batching": {"max_batch_size": batch},
        "card": card,
    }
    if batch == 0:
        config["runtime"] = {"warmup_batch_sizes": [1]}
    return config, labels


def _spec(t: Tensor, batch: int) -> dict[str, Any]:
    shape = list(t.shape)
    if batch > 0:
        shape[0] = -1
    return {"name": t.name, "datatype": t.datatype, "shape": shape}


def _image_input(graph: Graph) -> Tensor:
    if len(graph.inputs) != 1:
        found = ", ".join(str(t) for t in graph.inputs)
        raise CannotInfer(f"models add serves models with one image input; found {found}")
    image = graph.inputs[0]
    if len(image.shape) not in (3, 4) or image.datatype not in ("FP32", "FP16", "UINT8"):
        raise CannotInfer(
            f"input {image}: expected an image tensor [N, 3, H, W], [N, H, W, 3] or [3, H, W] "
            "of FP32, FP16 or UINT8"
        )
    return image


def _layout(image: Tensor) -> str:
    chw = image.shape[-3:]
    if chw[0] == 3 or (chw[0] == -1 and chw[2] != 3):
        return "NCHW"
    if chw[2] == 3:
        return "NHWC"
    raise CannotInfer(f"input {image}: no axis of 3 colour channels first or last")


def _hw(image: Tensor) -> list[int]:
    return image.shape[-2:] if _layout(image) == "NCHW" else image.shape[-3:-1]


def _spatial(graph: Graph, image: Tensor) -> tuple[int, int] | None:
    """The fixed (width, height) the model takes, if any."""
    h, w = _hw(image)
    if h > 0 and w > 0:
        return w, h
    return graph.image_size


def _guess_format(graph: Graph, task: str | None) -> str:
    outs = graph.outputs
    if graph.is_ultralytics:
        kind = graph.metadata.get("task", "detect")
        if kind == "detect":
            return "yolov8"
        if kind == "classify":
            return "classification"
        raise CannotInfer(f"Ultralytics task {kind!r} is not served (detect and classify are)")
    ints = [o for o in outs if o.datatype.startswith(("INT", "UINT"))]
    floats = [o for o in outs if o.datatype.startswith("FP")]
    if len(outs) == 3 and len(ints) == 1 and task in (None, "detection"):
        return "torchvision"
    ranks = {len(o.shape) for o in floats}
    if task in (None, "segmentation") and 4 in ranks:
        return "segmentation"
    if task in (None, "detection"):
        if len(floats) == 2 and any(o.shape[-1] == 4 for o in floats):
            box = next(o for o in floats if o.shape[-1] == 4)
            other = next(o for o in floats if o is not box)
            if "logit" in other.name.lower():
                return "detr"
            if "score" in other.name.lower():
                return "boxes_scores"
            raise CannotInfer(
                f"two outputs ({outs[0]}; {outs[1]}) fit both 'detr' (class logits with a "
                "no-object class, normalised boxes) and 'boxes_scores' (sigmoid scores, pixel "
                "boxes); pass --format"
            )
        if len(floats) == 1 and len(floats[0].shape) == 3:
            _, a, b = floats[0].shape
            if a > 0 and b > 0:
                return "yolov8" if a < b else "yolov5"
            raise CannotInfer(f"output {floats[0]}: dynamic axes; pass --format yolov8 or yolov5")
    if task in (None, "classification") and len(floats) == 1 and len(floats[0].shape) == 2:
        return "classification"
    raise CannotInfer(_no_format(graph))


def _no_format(graph: Graph) -> str:
    found = "; ".join(str(o) for o in graph.outputs)
    expected = "; ".join(f"{name}: {head.expected}" for name, head in HEADS.items())
    return (
        f"the outputs match no format. Found: {found}. Expected one of: {expected}; "
        "segmentation: scores [N, C, H, W]; classification: scores [N, C]"
    )


def _max_batch_size(image: Tensor, fmt: str, choices: Choices) -> int:
    if len(image.shape) == 3 or fmt == "torchvision":  # variable-length outputs cannot batch
        return 0
    if image.shape[0] == 1:
        return 1
    return 8 if choices.max_batch_size is None else choices.max_batch_size


def _postprocess(
    graph: Graph, fmt: str, shapes: dict[str, list[int]], labels: list[str], choices: Choices
) -> dict[str, Any]:
    if fmt == "classification":
        out = graph.outputs[0].name
        return {
            "kind": "softmax_topk",
            "output": out,
            "labels": "labels.txt",
            "apply_softmax": not graph.is_ultralytics,
        }
    if fmt == "segmentation":
        outs = [o for o in graph.outputs if len(shapes[o.name]) in (3, 4)]
        out = next((o for o in outs if o.name == "out"), outs[0] if outs else None)
        if out is None:
            raise CannotInfer(_no_format(graph))
        classes = shapes[out.name][-3]
        if classes > 0 and classes != len(labels):
            raise CannotInfer(f"output {out}: {classes} classes but {len(labels)} labels")
        return {"kind": "segmentation", "output": out.name, "labels": "labels.txt"}
    post: dict[str, Any] = {
        "kind": "detection",
        "format": fmt,
        "labels": "labels.txt",
        **_output_roles(graph, fmt),
        **DETECTION_DEFAULTS[fmt],
    }
    if choices.score_threshold is not None:
        post["score_threshold"] = choices.score_threshold
    try:
        HEADS[fmt].check(BoxDetection.model_validate(post), shapes, len(labels))
    except LayoutError as exc:
        raise CannotInfer(f"format {fmt!r}: {exc}") from None
    return post


def _output_roles(graph: Graph, fmt: str) -> dict[str, str]:
    """Which output plays which part in the format, by rank, datatype and name."""
    outs = graph.outputs
    roles = DETECTION_OUTPUTS[fmt]
    if len(outs) != len(roles):
        raise CannotInfer(f"format {fmt!r} reads {len(roles)} outputs; {_no_format(graph)}")
    if fmt in ("yolov8", "yolov5"):
        return {"output": outs[0].name}
    boxes = [o for o in outs if o.shape[-1] == 4 and o.datatype.startswith("FP")]
    if not boxes:
        raise CannotInfer(f"format {fmt!r} needs a boxes output [.., 4]; {_no_format(graph)}")
    box = next((o for o in boxes if "box" in o.name.lower()), boxes[-1])
    rest = [o for o in outs if o is not box]
    if fmt == "torchvision":
        label = next((o for o in rest if o.datatype.startswith(("INT", "UINT"))), None)
        score = next((o for o in rest if o is not label), None)
        if label is None or score is None:
            raise CannotInfer(f"format 'torchvision' needs int labels; {_no_format(graph)}")
        return {"boxes_output": box.name, "scores_output": score.name, "labels_output": label.name}
    other = rest[0].name
    if fmt == "detr":
        return {"logits_output": other, "boxes_output": box.name}
    return {"boxes_output": box.name, "scores_output": other}


def _preprocess(graph: Graph, image: Tensor, fmt: str, choices: Choices) -> dict[str, Any]:
    size = choices.size or _spatial(graph, image)
    dynamic = choices.size is None and (size is None or -1 in _hw(image))
    resize: dict[str, Any] | None
    crop = None
    if fmt in ("yolov8", "yolov5"):
        w, h = size or (640, 640)
        resize = {"mode": "letterbox", "width": w, "height": h, "center": True, "pad_value": 114}
        normalize: dict[str, Any] = {}
    elif fmt == "torchvision":  # resizing and normalisation are inside the model
        resize = (
            None
            if dynamic or size is None
            else {"mode": "exact", "width": size[0], "height": size[1]}
        )
        normalize = {}
    elif fmt == "classification":
        w, h = size or (224, 224)
        resize = {"mode": "shorter_side", "size": round(min(w, h) / 0.875)}
        crop = {"width": w, "height": h}
        normalize = dict(IMAGENET)
    else:
        shorter = {"detr": 800, "segmentation": 520}.get(fmt, 640)
        resize = (
            {"mode": "shorter_side", "size": shorter}
            if dynamic or size is None
            else {"mode": "exact", "width": size[0], "height": size[1]}
        )
        normalize = dict(IMAGENET)
    if choices.mean is not None:
        normalize["mean"] = choices.mean
    if choices.std is not None:
        normalize["std"] = choices.std
    if choices.pixel_range is not None:
        normalize["scale"] = 1.0 if choices.pixel_range == "0-255" else 1 / 255
    pre: dict[str, Any] = {
        "input": image.name,
        "layout": _layout(image),
        "datatype": image.datatype,
        "normalize": normalize,
    }
    if resize is not None:
        pre["resize"] = resize
    if crop is not None:
        pre["crop"] = crop
    if choices.bgr:
        pre["channel_order"] = "BGR"
    return pre
