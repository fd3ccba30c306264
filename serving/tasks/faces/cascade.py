"""MTCNN detection over a batch of images: three network calls, each batched across images.

P-Net runs once per pyramid level of every image (levels of equal size batch together), R-Net
and O-Net once over the crops of all images. The networks are reached through ``infer`` (the
dynamic batcher in the server, a plain session in tests and export) and the pixel work through
``offload`` (the decode pool in the server), so this one implementation serves both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from serving.imaging.nms import nms
from serving.tasks.faces import mtcnn

T = TypeVar("T")
Stage = Literal["pnet", "rnet", "onet"]
Rows = list[dict[str, np.ndarray]]
Infer = Callable[[Stage, Rows], Awaitable[Rows]]
Offload = Callable[[Callable[[], T]], Awaitable[T]]


@dataclass(frozen=True)
class CascadeParams:
    """The MTCNN paper's settings unless a model's config says otherwise."""

    min_face: float = 20.0
    factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    nms_level: float = 0.5
    nms_image: float = 0.7
    rnet_size: int = 24  # crop sides of the stage models (the server reads their configs)
    onet_size: int = 48


@dataclass(frozen=True)
class Faces:
    """The faces of one image, best score first."""

    boxes: np.ndarray  # [K, 4] x1, y1, x2, y2
    scores: np.ndarray  # [K]
    landmarks: np.ndarray  # [K, 5, 2]: left eye, right eye, nose, mouth left, mouth right

    def __len__(self) -> int:
        return len(self.scores)


async def _inline(fn: Callable[[], T]) -> T:
    return fn()


async def detect_faces(
    images: Sequence[np.ndarray],
    infer: Infer,
    params: CascadeParams = CascadeParams(),
    offload: Offload = _inline,
) -> list[Faces]:
    """Faces in each ``HxWx3`` uint8 RGB image, in that image's pixels."""
    levels = [
        (i, scale)
        for i, px in enumerate(images)
        for scale in mtcnn.pyramid_scales(px.shape[1], px.shape[0], params.min_face, params.factor)
    ]

    def pyramid() -> Rows:
        rows = []
        for i, scale in levels:
            h, w = images[i].shape[:2]
            rows.append({"pixels": mtcnn.resize_pixels(images[i], mtcnn.level_size(w, h, scale))})
        return rows

    outs = await infer("pnet", await offload(pyramid)) if levels else []
    found = [
        mtcnn.proposals(out["offsets"], out["prob"], scale, params.thresholds[0])
        for out, (_, scale) in zip(outs, levels, strict=True)
    ]
    counts = [len(s) for _, s, _ in found]
    image_of = np.repeat(np.array([i for i, _ in levels], dtype=np.int64), counts)
    level_of = np.repeat(np.arange(len(levels)), counts)
    boxes = _cat([b for b, _, _ in found], (0, 4))
    scores = _cat([s for _, s, _ in found], (0,))
    offsets = _cat([o for _, _, o in found], (0, 4))
    keep = nms(boxes, scores, params.nms_level, groups=level_of)
    keep = keep[nms(boxes[keep], scores[keep], params.nms_image, groups=image_of[keep])]
    boxes = mtcnn.square(mtcnn.apply_offsets(boxes[keep], offsets[keep]))
    image_of = image_of[keep]

    # R-Net: refine every proposal of every image in one batched call.
    out = await _stage(infer, "rnet", images, boxes, image_of, params.rnet_size, offload)
    ok = out["prob"] > params.thresholds[1]
    boxes, image_of, scores, offsets = boxes[ok], image_of[ok], out["prob"][ok], out["offsets"][ok]
    keep = nms(boxes, scores, params.nms_image, groups=image_of)
    boxes = mtcnn.square(mtcnn.apply_offsets(boxes[keep], offsets[keep]))
    image_of = image_of[keep]

    # O-Net: final boxes, scores and the five landmarks.
    out = await _stage(infer, "onet", images, boxes, image_of, params.onet_size, offload)
    ok = out["prob"] > params.thresholds[2]
    boxes, image_of, scores = boxes[ok], image_of[ok], out["prob"][ok]
    points = mtcnn.landmarks(boxes, out["landmarks"][ok])
    boxes = mtcnn.apply_offsets(boxes, out["offsets"][ok])
    keep = nms(boxes, scores, params.nms_image, groups=image_of, overlap="min")
    boxes, image_of, scores, points = boxes[keep], image_of[keep], scores[keep], points[keep]
    return [_faces_of(i, px, boxes, scores, points, image_of) for i, px in enumerate(images)]


async def _stage(
    infer: Infer,
    stage: Stage,
    images: Sequence[np.ndarray],
    boxes: np.ndarray,
    image_of: np.ndarray,
    size: int,
    offload: Offload,
) -> dict[str, np.ndarray]:
    """Run ``stage`` on ``size``x``size`` crops of ``boxes``; outputs stacked in box order."""
    if len(boxes) == 0:
        width = {"offsets": (0, 4), "prob": (0,), "landmarks": (0, 10)}
        return {k: np.zeros(v, dtype=np.float32) for k, v in width.items()}

    def cut() -> np.ndarray:
        out = np.empty((len(boxes), 3, size, size), dtype=np.float32)
        for i in np.unique(image_of):
            mask = image_of == i
            out[mask] = mtcnn.crops(images[i], boxes[mask], size)
        return out

    patches = await offload(cut)
    rows = await infer(stage, [{"pixels": p} for p in patches])
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def _faces_of(
    i: int,
    pixels: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    points: np.ndarray,
    image_of: np.ndarray,
) -> Faces:
    mask = image_of == i
    h, w = pixels.shape[:2]
    clipped = np.clip(boxes[mask], 0, np.array([w, h, w, h], dtype=np.float32))
    return Faces(clipped.astype(np.float32), scores[mask].astype(np.float32), points[mask])


def _cat(parts: list[np.ndarray], empty: tuple[int, ...]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(empty, dtype=np.float32)
