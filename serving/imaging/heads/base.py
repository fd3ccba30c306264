"""What every detection head decoder shares: the image's frame, layout checks, the signature."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from serving.core.config import BoxDetection
from serving.imaging.detection import DetectionParams, Detections
from serving.imaging.transforms import Geometry

Shapes = Mapping[str, list[int]]  # output name -> shape without the batch axis; -1 dynamic


class LayoutError(ValueError):
    """The model's outputs do not have the layout its configured format reads."""


@dataclass(frozen=True)
class Frame:
    """Where one image's model input came from."""

    geometry: Geometry  # model-input pixels <-> original pixels
    input_size: tuple[int, int]  # (width, height) of the model input tensor


@dataclass(frozen=True)
class Head:
    """One output format: a pure decoder for one image, and a load-time check of the shapes."""

    decode: Callable[[Mapping[str, np.ndarray], BoxDetection, Frame, DetectionParams], Detections]
    check: Callable[[BoxDetection, Shapes, int], None]  # (config, shapes, number of labels)
    expected: str  # the layout in words, for error messages


def squeeze_to(x: np.ndarray, rank: int, what: str) -> np.ndarray:
    """Drop leading axes of size 1 (a model exported with a fixed batch of one) down to ``rank``."""
    while x.ndim > rank and x.shape[0] == 1:
        x = x[0]
    if x.ndim != rank:
        raise LayoutError(f"{what}: expected rank {rank}, got shape {list(x.shape)}")
    return x


def require(name: str, shape: list[int], pattern: list[int | None], expected: str) -> None:
    """``shape`` (batch axis dropped, leading 1s tolerated) fits ``pattern``: ``None`` is any
    size, an int must match unless the axis is dynamic (-1)."""
    trimmed = list(shape)
    while len(trimmed) > len(pattern) and trimmed[0] == 1:
        trimmed = trimmed[1:]
    fits = len(trimmed) == len(pattern) and all(
        want is None or have in (-1, want) for have, want in zip(trimmed, pattern, strict=True)
    )
    if not fits:
        wanted = ", ".join("*" if w is None else str(w) for w in pattern)
        raise LayoutError(f"output {name!r} has shape {shape}, expected [{wanted}] ({expected})")


def finish(
    boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, frame: Frame, limit: int
) -> Detections:
    """Best ``limit`` detections, best first, boxes mapped to original pixels."""
    order = np.argsort(-scores, kind="stable")[:limit]
    return Detections(
        boxes=frame.geometry.boxes_to_original(boxes[order].astype(np.float32)).astype(np.float32),
        scores=scores[order].astype(np.float32),
        class_ids=class_ids[order].astype(np.int64),
    )


def keep_classes(class_ids: np.ndarray, params: DetectionParams) -> np.ndarray:
    """Mask of the detections whose class the request asked for."""
    if params.classes is None:
        return np.ones(len(class_ids), dtype=bool)
    return np.isin(class_ids, np.fromiter(params.classes, dtype=np.int64))
