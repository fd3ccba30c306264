"""Rendered previews: valid images, drawn where the results are and nowhere else."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from serving.imaging.render import draw_boxes, overlay_classes, palette, png


def test_palette_is_distinct_with_black_background() -> None:
    colours = palette(9)
    assert colours.shape == (9, 3) and colours.dtype == np.uint8
    assert (colours[0] == 0).all() and len({tuple(c) for c in colours}) == 9


def test_boxes_are_drawn_at_the_decoded_scale() -> None:
    """A 100x80 decode of a 400x320 original: a box given in original pixels lands at 1/4."""
    pixels = np.full((80, 100, 3), 255, dtype=np.uint8)
    img = draw_boxes(
        pixels,
        (400, 320),
        np.array([[40.0, 120.0, 200.0, 280.0]]),
        ["star 0.90"],
        np.array([3]),
        palette(8, background=None),
    )
    out = np.asarray(img)
    assert img.size == (100, 80)
    assert (out[30:70, 10] != 255).any()  # left edge at x = 10
    assert (out[50, 20:40] == 255).all()  # inside the box untouched
    decoded = Image.open(io.BytesIO(png(img)))
    assert decoded.format == "PNG" and decoded.size == (100, 80)


def test_overlay_tints_classes_and_leaves_background() -> None:
    pixels = np.full((20, 30, 3), 100, dtype=np.uint8)
    classes = np.zeros((10, 15), dtype=np.uint8)  # half resolution: resized to the pixels
    classes[:, 10:] = 2
    out = np.asarray(overlay_classes(pixels, classes, palette(3)))
    assert (out[:, :20] == 100).all()
    assert (out[:, 20:] != 100).any(axis=-1).all()
