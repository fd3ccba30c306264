"""Geometric image transforms and the record needed to undo them.

Resizing uses Pillow with the same size arithmetic as torchvision's PIL path, so models exported
with torchvision transforms see the same pixels here. Every transform updates a
:class:`Geometry`, which maps model-input coordinates back to the original image's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from serving.core.config import CenterCrop, ExactSize, Letterbox, Resize, ShorterSide

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}


@dataclass(frozen=True)
class Geometry:
    """``model_xy = original_xy * scale + offset``, per axis."""

    original_size: tuple[int, int]  # (width, height)
    scale: tuple[float, float] = (1.0, 1.0)
    offset: tuple[float, float] = (0.0, 0.0)

    def then_scale(self, sx: float, sy: float) -> Geometry:
        return replace(
            self,
            scale=(self.scale[0] * sx, self.scale[1] * sy),
            offset=(self.offset[0] * sx, self.offset[1] * sy),
        )

    def then_shift(self, dx: float, dy: float) -> Geometry:
        return replace(self, offset=(self.offset[0] + dx, self.offset[1] + dy))

    def boxes_to_original(self, boxes: np.ndarray) -> np.ndarray:
        """``[..., 4]`` x1, y1, x2, y2 boxes in model pixels -> clipped original pixels."""
        sx, sy = self.scale
        ox, oy = self.offset
        out = (boxes - np.array([ox, oy, ox, oy], dtype=np.float32)) / np.array(
            [sx, sy, sx, sy], dtype=np.float32
        )
        w, h = self.original_size
        return np.clip(out, 0, np.array([w, h, w, h], dtype=np.float32))

    def points_to_original(self, points: np.ndarray) -> np.ndarray:
        """``[..., 2]`` x, y points in model pixels -> original pixels."""
        return (points - np.asarray(self.offset, dtype=np.float32)) / np.asarray(
            self.scale, dtype=np.float32
        )


def resized_size(resize: Resize, width: int, height: int) -> tuple[int, int]:
    """Output (width, height) of ``resize`` for an input of that size."""
    match resize:
        case ShorterSide(size=size):
            # torchvision: the shorter side becomes `size`, the longer is truncated.
            if width <= height:
                return size, int(size * height / width)
            return int(size * width / height), size
        case ExactSize(width=w, height=h):
            return w, h
        case Letterbox(width=w, height=h):
            scale = min(w / width, h / height)
            return max(1, round(width * scale)), max(1, round(height * scale))
    raise TypeError(f"unknown resize {resize!r}")


def apply_resize(
    img: Image.Image, resize: Resize, geometry: Geometry
) -> tuple[Image.Image, Geometry]:
    """Resize (and pad, for letterbox); ``geometry`` must describe ``img`` on entry."""
    ow, oh = geometry.original_size
    tw, th = resized_size(resize, ow, oh)
    if img.size != (tw, th):
        img = img.resize((tw, th), _RESAMPLE[resize.interpolation])
    geometry = geometry.then_scale(tw / ow / geometry.scale[0], th / oh / geometry.scale[1])
    if isinstance(resize, Letterbox):
        img, geometry = _pad_to(img, resize, geometry)
    return img, geometry


def apply_resize_and_crop(
    img: Image.Image, resize: Resize, crop: CenterCrop, geometry: Geometry
) -> tuple[Image.Image, Geometry] | None:
    """``apply_resize`` then ``apply_center_crop``, computing only the pixels the crop keeps.

    An elongated image (say 1x6000) resized by its shorter side would become enormous
    (256 x 1.5 M) only to be cropped to 224 x 224; Pillow's ``box`` resamples just the crop
    window from the source, with the same filter taps, so the cost no longer grows with the long
    side. ``None`` when the crop is larger than the resized image (it pads; resize is small).
    """
    if isinstance(resize, Letterbox):
        return None
    ow, oh = geometry.original_size
    tw, th = resized_size(resize, ow, oh)
    if tw < crop.width or th < crop.height:
        return None
    left = round((tw - crop.width) / 2.0)
    top = round((th - crop.height) / 2.0)
    sx, sy = img.width / tw, img.height / th  # current pixels per resized pixel
    box = (left * sx, top * sy, (left + crop.width) * sx, (top + crop.height) * sy)
    img = img.resize((crop.width, crop.height), _RESAMPLE[resize.interpolation], box=box)
    geometry = geometry.then_scale(tw / ow / geometry.scale[0], th / oh / geometry.scale[1])
    return img, geometry.then_shift(-left, -top)


def _pad_to(img: Image.Image, box: Letterbox, geometry: Geometry) -> tuple[Image.Image, Geometry]:
    dx = (box.width - img.width) // 2 if box.center else 0
    dy = (box.height - img.height) // 2 if box.center else 0
    canvas = Image.new("RGB", (box.width, box.height), (box.pad_value,) * 3)
    canvas.paste(img, (dx, dy))
    return canvas, geometry.then_shift(dx, dy)


def apply_center_crop(
    img: Image.Image, crop: CenterCrop, geometry: Geometry
) -> tuple[Image.Image, Geometry]:
    """torchvision ``CenterCrop``: rounds the offset, pads with zeros if the image is smaller."""
    left = round((img.width - crop.width) / 2.0)
    top = round((img.height - crop.height) / 2.0)
    img = img.crop((left, top, left + crop.width, top + crop.height))
    return img, geometry.then_shift(-left, -top)
