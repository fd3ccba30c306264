"""The object classes: shapes drawn as anti-aliased alpha masks at any size and rotation."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

CLASSES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "hexagon",
    "cross",
    "ring",
    "crescent",
)
_SUPERSAMPLE = 4


def _polygon(kind: str) -> list[tuple[float, float]]:
    """Vertices on the unit disc (radius 1, centred on 0), before rotation."""
    if kind == "square":
        return [(math.cos(a), math.sin(a)) for a in np.arange(4) * math.pi / 2 + math.pi / 4]
    if kind == "triangle":
        return [(math.cos(a), math.sin(a)) for a in np.arange(3) * 2 * math.pi / 3 - math.pi / 2]
    if kind == "hexagon":
        return [(math.cos(a), math.sin(a)) for a in np.arange(6) * math.pi / 3]
    if kind == "star":
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        angles = np.arange(10) * math.pi / 5 - math.pi / 2
        return [(r * math.cos(a), r * math.sin(a)) for r, a in zip(radii, angles, strict=True)]
    if kind == "cross":
        a, b = 0.32, 0.95  # half arm width, arm length
        return [
            (a, -b),
            (a, -a),
            (b, -a),
            (b, a),
            (a, a),
            (a, b),
            (-a, b),
            (-a, a),
            (-b, a),
            (-b, -a),
            (-a, -a),
            (-a, -b),
        ]
    raise ValueError(f"{kind!r} is not a polygon shape")


def shape_alpha(kind: str, size: int, rotation_deg: float) -> np.ndarray:
    """``size`` x ``size`` float32 coverage in [0, 1] of ``kind`` filling the square, rotated."""
    big = size * _SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    r = big / 2 - 0.5
    c = big / 2
    theta = math.radians(rotation_deg)
    cos, sin = math.cos(theta), math.sin(theta)

    def place(x: float, y: float, radius: float = r) -> tuple[float, float]:
        return (c + radius * (x * cos - y * sin), c + radius * (x * sin + y * cos))

    if kind == "circle":
        draw.ellipse((c - r, c - r, c + r, c + r), fill=255)
    elif kind == "ring":
        draw.ellipse((c - r, c - r, c + r, c + r), fill=255)
        inner = 0.55 * r
        draw.ellipse((c - inner, c - inner, c + inner, c + inner), fill=0)
    elif kind == "crescent":
        draw.ellipse((c - r, c - r, c + r, c + r), fill=255)
        bx, by = place(0.45, 0.0)
        bite = 0.85 * r
        draw.ellipse((bx - bite, by - bite, bx + bite, by + bite), fill=0)
    else:
        draw.polygon([place(x, y) for x, y in _polygon(kind)], fill=255)
    small = canvas.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0
