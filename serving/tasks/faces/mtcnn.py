"""MTCNN's cascade between its three networks, in numpy: pyramid, proposals, crops, box updates.

The networks (P-Net, R-Net, O-Net) run elsewhere; these are the pure steps around them. Boxes
are ``[K, 4]`` float32 ``x1, y1, x2, y2`` in pixels of the image the cascade runs on.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

PNET_CELL = 12  # P-Net sees 12x12 windows...
PNET_STRIDE = 2  # ...every 2 pixels of the pyramid level


def pyramid_scales(width: int, height: int, min_face: float, factor: float) -> list[float]:
    """Scales at which a face of ``min_face`` pixels and up fills P-Net's 12-pixel window."""
    scale = PNET_CELL / min_face
    side = min(width, height) * scale
    scales = []
    while side >= PNET_CELL:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def level_size(width: int, height: int, scale: float) -> tuple[int, int]:
    return int(width * scale + 1), int(height * scale + 1)


def resize_pixels(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``HxWx3`` uint8 -> ``3xhxw`` float32 at ``size`` (w, h), area-averaged like MTCNN's."""
    img = Image.fromarray(pixels)
    if img.size != size:
        img = img.resize(size, Image.Resampling.BOX)
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1)


def proposals(
    offsets: np.ndarray, probs: np.ndarray, scale: float, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P-Net output of one level (``[4,h,w]``, ``[h,w]``) -> windows, scores, offsets above it."""
    ys, xs = np.nonzero(probs >= threshold)
    corner = np.stack([xs, ys], axis=1).astype(np.float32) * PNET_STRIDE
    boxes = np.floor(np.concatenate([corner + 1, corner + PNET_CELL], axis=1) / np.float32(scale))
    return boxes, probs[ys, xs].astype(np.float32), offsets[:, ys, xs].T.astype(np.float32)


def apply_offsets(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Regress boxes by the networks' offsets, which are fractions of the box's size."""
    size = np.tile(boxes[:, 2:4] - boxes[:, 0:2] + 1, 2)
    return (boxes + offsets * size).astype(np.float32)


def square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (the next stage takes square crops)."""
    centre = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
    half = (boxes[:, 2:4] - boxes[:, 0:2]).max(axis=1, keepdims=True) / 2
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)


def crops(pixels: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """``[K,3,size,size]`` float32 crops of ``boxes``; the part outside the image is black."""
    img = Image.fromarray(pixels)
    out = np.empty((len(boxes), 3, size, size), dtype=np.float32)
    for i, box in enumerate(np.trunc(boxes).astype(int)):
        x1, y1, x2, y2 = box  # inclusive, 1-based, as in the MTCNN reference code
        patch = img.crop((x1 - 1, y1 - 1, max(x2, x1), max(y2, y1)))  # pads outside with 0
        patch = patch.resize((size, size), Image.Resampling.BOX)
        out[i] = np.asarray(patch, dtype=np.float32).transpose(2, 0, 1)
    return out


def landmarks(boxes: np.ndarray, relative: np.ndarray) -> np.ndarray:
    """O-Net's ``[K,10]`` (five x then five y, as box fractions) -> ``[K,5,2]`` pixels."""
    size = boxes[:, 2:4] - boxes[:, 0:2] + 1
    rel = relative.reshape(-1, 2, 5).transpose(0, 2, 1)
    return (boxes[:, None, 0:2] - 1 + rel * size[:, None, :]).astype(np.float32)
