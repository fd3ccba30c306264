"""Background photographs (scikit-image's bundled samples) and their random variations.

Splits use disjoint photos, so test scores measure generalisation to unseen backgrounds rather
than memorised ones. Only photos bundled in the scikit-image wheel are used: nothing downloads.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image

SPLIT_PHOTOS: dict[str, tuple[str, ...]] = {
    "train": (
        "coffee",
        "chelsea",
        "rocket",
        "hubble_deep_field",
        "immunohistochemistry",
        "retina",
        "brick",
        "grass",
        "gravel",
        "moon",
        "page",
        "text",
        "motorcycle",
    ),
    "val": ("cell", "coins"),
    "test": ("astronaut", "camera", "colorwheel"),
}


@cache
def photo(name: str) -> np.ndarray:
    """The named photo as HxWx3 uint8 (grey photos are replicated to three channels)."""
    import skimage.data

    pixels = (
        skimage.data.stereo_motorcycle()[0]
        if name == "motorcycle"
        else getattr(skimage.data, name)()
    )
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3].astype(np.uint8))


def background(
    name: str, width: int, height: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, object]]:
    """A random crop of photo ``name``, flipped, tinted and jittered, resized to the scene.

    Returns the pixels and a record of the choices, for the scene graph.
    """
    src = photo(name)
    ph, pw = src.shape[:2]
    aspect = width / height
    frac = rng.uniform(0.35, 1.0)
    ch = int(min(ph, pw / aspect) * frac)
    cw = int(ch * aspect)
    y0 = int(rng.integers(0, ph - ch + 1))
    x0 = int(rng.integers(0, pw - cw + 1))
    crop = Image.fromarray(src[y0 : y0 + ch, x0 : x0 + cw]).resize(
        (width, height), Image.Resampling.BILINEAR
    )
    pixels = np.asarray(crop, dtype=np.float32)
    flip = bool(rng.random() < 0.5)
    if flip:
        pixels = pixels[:, ::-1]
    gain = rng.uniform(0.75, 1.2, size=3) * rng.uniform(0.7, 1.25)  # tint and brightness
    mean = pixels.mean()
    contrast = rng.uniform(0.6, 1.3)
    pixels = (pixels - mean) * contrast + mean
    pixels = np.clip(pixels * gain, 0, 255).astype(np.uint8)
    record = {
        "photo": name,
        "crop": [x0, y0, cw, ch],
        "flip": flip,
        "gain": [round(float(g), 3) for g in gain],
        "contrast": round(float(contrast), 3),
    }
    return np.ascontiguousarray(pixels), record
