"""Drawing results onto the uploaded image, for people to look at (``render=true``).

Rendering happens at the decoded resolution (JPEGs may be decoded reduced, see
:mod:`serving.imaging.decode`); results given in original pixels are scaled to it.
"""

from __future__ import annotations

import colorsys
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

_GOLDEN = 0.618033988749895


def palette(count: int, background: int | None = 0) -> np.ndarray:
    """``[count, 3]`` uint8 colours far apart in hue; ``background`` is black."""
    colours = [colorsys.hsv_to_rgb((i * _GOLDEN) % 1.0, 0.85, 1.0) for i in range(count)]
    out = (np.asarray(colours) * 255).round().astype(np.uint8).reshape(count, 3)
    if background is not None and 0 <= background < count:
        out[background] = 0
    return out


def draw_boxes(
    pixels: np.ndarray,
    original_size: tuple[int, int],
    boxes: np.ndarray,
    captions: Sequence[str],
    class_ids: np.ndarray,
    colours: np.ndarray,
) -> Image.Image:
    """Boxes (original pixels, x1 y1 x2 y2) outlined and captioned on the decoded image."""
    img = Image.fromarray(pixels)
    scale = img.width / original_size[0]
    draw = ImageDraw.Draw(img)
    width = max(1, round(min(img.size) / 200))
    for box, caption, cls in zip(boxes, captions, class_ids, strict=True):
        x1, y1, x2, y2 = (float(v) * scale for v in box)
        colour = tuple(int(c) for c in colours[int(cls) % len(colours)])
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        left, top, right, bottom = draw.textbbox((x1, y1), caption)
        lift = bottom - top + 2
        draw.rectangle((left, top - lift, right + 2, bottom - lift), fill=colour)
        draw.text((x1 + 1, y1 - lift), caption, fill=(0, 0, 0))
    return img


def overlay_classes(
    pixels: np.ndarray,
    classes: np.ndarray,
    colours: np.ndarray,
    alpha: float = 0.5,
    background: int | None = 0,
) -> Image.Image:
    """Blend each non-background pixel with its class colour; ``classes`` at any size."""
    h, w = pixels.shape[:2]
    if classes.shape != (h, w):
        classes = np.asarray(Image.fromarray(classes).resize((w, h), Image.Resampling.NEAREST))
    tint = colours[classes % len(colours)].astype(np.float32)
    mixed = pixels.astype(np.float32) * (1 - alpha) + tint * alpha
    keep = classes == background if background is not None else np.zeros_like(classes, bool)
    out = np.where(keep[:, :, None], pixels, mixed.round().astype(np.uint8))
    return Image.fromarray(out.astype(np.uint8))


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)  # speed over size: this is a preview
    return buf.getvalue()
