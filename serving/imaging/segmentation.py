"""Segmenter postprocessing: per-pixel class scores -> a class map in original pixels,
its encodings (COCO RLE per class, PNG) and per-class area fractions."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from serving.imaging.transforms import Geometry


def class_map(scores: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` logits or probabilities -> ``[H, W]`` uint8 (uint16 beyond 256 classes)."""
    dtype = np.uint8 if scores.shape[0] <= 256 else np.uint16
    return scores.argmax(axis=0).astype(dtype)


def to_original(classes: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Resample a model-pixel class map to the original image, nearest neighbour.

    Each original pixel centre is mapped through ``geometry`` (resize, letterbox, crop), so the
    letterbox padding is dropped and no label is invented by interpolation.
    """
    width, height = geometry.original_size
    (sx, sy), (ox, oy) = geometry.scale, geometry.offset
    h, w = classes.shape
    cols = np.clip(np.floor((np.arange(width) + 0.5) * sx + ox), 0, w - 1).astype(np.intp)
    rows = np.clip(np.floor((np.arange(height) + 0.5) * sy + oy), 0, h - 1).astype(np.intp)
    return classes[rows[:, None], cols[None, :]]


def class_map_of(scores: np.ndarray, geometry: Geometry, input_size: tuple[int, int]) -> np.ndarray:
    """``[C, h, w]`` scores for a model input of ``input_size`` (width, height) -> the class map
    in original pixels.

    At the input's size (torchvision's segmenters upsample inside): argmax, then nearest
    resampling. At a fraction of it (SegFormer-style): the scores are resampled bilinearly at
    each original pixel first, as ``F.interpolate(..., align_corners=False)`` to the original
    size before the argmax (Hugging Face's post-processing), so edges are not blocky.
    """
    if scores.shape[1:] == (input_size[1], input_size[0]):
        return to_original(class_map(scores), geometry)
    width, height = geometry.original_size
    (sx, sy), (ox, oy) = geometry.scale, geometry.offset
    rows = _bilinear_weights(height, sy, oy, scores.shape[1] / input_size[1], scores.shape[1])
    cols = _bilinear_weights(width, sx, ox, scores.shape[2] / input_size[0], scores.shape[2])
    dtype = np.uint8 if scores.shape[0] <= 256 else np.uint16
    out = np.empty((height, width), dtype=dtype)
    scores = scores.astype(np.float32)
    step = max(1, (1 << 22) // max(scores.shape[0] * width, 1))  # ~16 MB of scores per chunk
    for top in range(0, height, step):
        chunk = np.matmul(np.matmul(rows[top : top + step], scores), cols.T)  # [C, r, width]
        out[top : top + step] = chunk.argmax(axis=0)
    return out


def _bilinear_weights(n: int, scale: float, offset: float, ratio: float, size: int) -> np.ndarray:
    """``[n, size]`` weights sampling ``size`` score cells at ``n`` original pixel centres."""
    src = ((np.arange(n) + 0.5) * scale + offset) * ratio - 0.5
    src = np.clip(src, 0, size - 1)
    low = np.floor(src).astype(np.intp)
    high = np.minimum(low + 1, size - 1)
    frac = (src - low).astype(np.float32)
    weights = np.zeros((n, size), dtype=np.float32)
    np.add.at(weights, (np.arange(n), low), 1 - frac)
    np.add.at(weights, (np.arange(n), high), frac)
    return weights


def area_fractions(classes: np.ndarray, num_classes: int) -> np.ndarray:
    """Fraction of the image's pixels given to each class, ``[num_classes]``, summing to 1."""
    counts = np.bincount(classes.ravel(), minlength=num_classes)[:num_classes]
    return counts / max(classes.size, 1)


def rle_encode(mask: np.ndarray) -> dict[str, object]:
    """COCO compressed RLE of a ``[H, W]`` boolean mask (what ``pycocotools.mask.encode``
    returns, with ``counts`` as text): column-major runs, starting with a run of zeros."""
    h, w = mask.shape
    flat = mask.T.ravel().astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    edges = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(edges)
    if flat.size and flat[0]:
        runs = np.concatenate([[0], runs])
    return {"size": [h, w], "counts": _rle_string(runs.tolist())}


def _rle_string(counts: list[int]) -> str:
    """pycocotools' ``rleToString``: deltas against the run two back, 5-bit LEB128-like."""
    out = []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def rle_decode(rle: dict[str, object]) -> np.ndarray:
    """Inverse of :func:`rle_encode`, for clients and tests."""
    h, w = rle["size"]  # type: ignore[misc]
    text = str(rle["counts"])
    counts: list[int] = []
    p = 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape(w, h).T


def png_bytes(classes: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """The class map as a PNG whose pixel values are class ids.

    With ``palette`` (``[K, 3]`` uint8, K <= 256) it is a palette PNG: viewers show colours and
    readers still get the ids. Maps beyond 256 classes are 16-bit grey.
    """
    img = Image.fromarray(classes)
    if palette is not None and classes.dtype == np.uint8:
        img.putpalette(palette.astype(np.uint8).ravel().tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
