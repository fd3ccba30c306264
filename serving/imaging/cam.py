"""Class activation maps (Zhou et al., "Learning Deep Features for Discriminative Localization",
CVPR 2016): where in the image the evidence for a class lies, and a box around it.

For a network that ends in global average pooling and one linear layer, the logit of class k is
the spatial mean of ``M_k = sum_c W[k, c] * F[c]`` (plus the bias), so ``M_k`` shows which cells
of the last feature map ``F`` raised it. The box follows the paper's localisation recipe:
upsample the map to the model input, keep pixels above a fraction (20 %) of its peak, take the
largest connected component's bounding box, map it back to the original image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from serving.imaging.transforms import Geometry


@dataclass(frozen=True)
class Localisation:
    grid: np.ndarray  # [h, w] map min-max normalised to [0, 1], at feature-map resolution
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in original-image pixels


def class_maps(feature_map: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``[C, h, w]`` feature map and ``[K, C]`` class weights -> ``[K, h, w]`` raw maps."""
    return np.einsum("kc,chw->khw", weights, feature_map, optimize=True)


def normalise(cam: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1], as the paper's code does before thresholding; flat maps become 0."""
    low, high = float(cam.min()), float(cam.max())
    if high - low <= 1e-12:
        return np.zeros_like(cam, dtype=np.float32)
    return ((cam - low) / (high - low)).astype(np.float32)


def upsample(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float map to ``size`` = (width, height)."""
    img = Image.fromarray(np.ascontiguousarray(grid, dtype=np.float32), mode="F")
    return np.asarray(img.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


def _row_runs(mask: np.ndarray) -> list[tuple[int, int, int]]:
    """``(row, start, stop)`` for every horizontal run of True pixels."""
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows_s, cols_s = np.nonzero(edges == 1)
    _, cols_e = np.nonzero(edges == -1)
    return list(zip(rows_s.tolist(), cols_s.tolist(), cols_e.tolist(), strict=True))


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of a boolean mask (empty mask -> empty mask).

    Union-find over horizontal runs: a CAM mask is a few smooth blobs, so it has a few hundred
    runs at most, and this costs far less than a per-pixel labelling in Python.
    """
    runs = _row_runs(mask)
    parent = list(range(len(runs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    previous: list[int] = []  # run indices of the row above
    current: list[int] = []
    row = -1
    for i, (r, start, stop) in enumerate(runs):
        if r != row:
            previous = current if r == row + 1 else []
            current, row = [], r
        for j in previous:
            _, a, b = runs[j]
            if a < stop and start < b:
                parent[root(i)] = root(j)
        current.append(i)
    if not runs:
        return np.zeros_like(mask, dtype=bool)
    sizes: dict[int, int] = {}
    for i, (_, start, stop) in enumerate(runs):
        sizes[root(i)] = sizes.get(root(i), 0) + stop - start
    best = max(sizes, key=lambda k: sizes[k])
    out = np.zeros_like(mask, dtype=bool)
    for i, (r, start, stop) in enumerate(runs):
        if root(i) == best:
            out[r, start:stop] = True
    return out


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Pixel-edge bounding box ``x1, y1, x2, y2`` of a non-empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def localise(
    cam: np.ndarray, input_size: tuple[int, int], geometry: Geometry, threshold: float = 0.2
) -> Localisation:
    """One class's raw map -> normalised grid and box in original pixels.

    ``input_size`` is the model input's (width, height), which the feature map spans;
    ``geometry`` maps model-input pixels back to the original image.
    """
    grid = normalise(cam)
    full = upsample(grid, input_size)
    region = largest_component(full >= threshold * float(full.max()))
    if not region.any():  # flat map: no evidence anywhere, box the whole input
        region = np.ones_like(region)
    box = geometry.boxes_to_original(np.asarray(mask_box(region), dtype=np.float32))
    return Localisation(grid=grid, box=tuple(round(float(v), 1) for v in box))


def heat_colours(values: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> RGB uint8 on a blue-cyan-yellow-red ramp."""
    stops = np.array([[0, 0, 128], [0, 160, 255], [255, 230, 0], [220, 0, 0]], dtype=np.float32)
    pos = np.clip(values, 0, 1) * (len(stops) - 1)
    low = np.minimum(pos.astype(np.int64), len(stops) - 2)
    frac = (pos - low)[..., None]
    return (stops[low] * (1 - frac) + stops[low + 1] * frac).round().astype(np.uint8)


def overlay_png(
    pixels: np.ndarray,
    original_size: tuple[int, int],
    grid: np.ndarray,
    input_size: tuple[int, int],
    geometry: Geometry,
    box: tuple[float, float, float, float],
    alpha: float = 0.5,
) -> bytes:
    """The map blended over the decoded image where the model looked, the box outlined; PNG.

    ``pixels`` may be decoded reduced; ``original_size`` is the full image's (width, height).
    Pixels outside the model's input (a centre crop cuts the sides) are left as they are.
    """
    h, w = pixels.shape[:2]
    scale = w / original_size[0]
    iw, ih = input_size
    x1, y1, x2, y2 = (
        v * scale for v in geometry.boxes_to_original(np.array([0, 0, iw, ih], dtype=np.float32))
    )
    left, top = max(0, round(x1)), max(0, round(y1))
    right, bottom = min(w, round(x2)), min(h, round(y2))
    out = pixels.astype(np.float32).copy()
    if right > left and bottom > top:
        heat = heat_colours(upsample(grid, (right - left, bottom - top))).astype(np.float32)
        region = out[top:bottom, left:right]
        out[top:bottom, left:right] = region * (1 - alpha) + heat * alpha
    img = Image.fromarray(out.round().astype(np.uint8))
    bx1, by1, bx2, by2 = (v * scale for v in box)
    ImageDraw.Draw(img).rectangle(
        (bx1, by1, bx2 - 1, by2 - 1), outline=(255, 255, 255), width=max(1, round(min(w, h) / 150))
    )
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()
