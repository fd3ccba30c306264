"""Scene datasets as model inputs, letterboxed by serving's own preprocessing code.

Training, evaluation and serving must see the same pixels and the same coordinate mapping, so
this module runs :class:`serving.imaging.preprocess.ImagePreprocessor` from the exported
config instead of re-implementing letterboxing with torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from export.backbone import MEAN, STD
from export.scenes.dataset import SceneRecord, load_pixels
from serving.core.config import Preprocess
from serving.imaging.decode import DecodedImage
from serving.imaging.preprocess import ImagePreprocessor, PreparedImage

IGNORE = 255  # class-map value for letterbox padding: no loss, no metric


def letterbox_preprocess(size: int) -> dict:
    """The ``preprocess`` block of both configs (pixels 0..255 -> ImageNet-normalised NCHW)."""
    return {
        "input": "pixels",
        "resize": {
            "mode": "letterbox",
            "width": size,
            "height": size,
            "interpolation": "bilinear",
            "pad_value": 114,
        },
        "normalize": {"mean": list(MEAN), "std": list(STD)},
    }


def preprocessor(size: int) -> ImagePreprocessor:
    config = Preprocess.model_validate(letterbox_preprocess(size))
    return ImagePreprocessor(config, max_pixels=50_000_000)


@dataclass(frozen=True)
class SceneTensors:
    pixels: np.ndarray  # [3, S, S] float32, normalised
    boxes: np.ndarray  # [K, 4] x1 y1 x2 y2 in input pixels
    labels: np.ndarray  # [K] int64, 0-based class index
    classes: np.ndarray  # [S, S] uint8 class map in input pixels (0 background, IGNORE padding)
    prepared: PreparedImage


def scene_tensors(record: SceneRecord, prep: ImagePreprocessor) -> SceneTensors:
    image, class_map = load_pixels(record)
    h, w = image.shape[:2]
    prepared = prep.from_decoded(DecodedImage(pixels=image, original_size=(w, h)))
    geo = prepared.geometry
    objects = record.scene.objects
    xywh = np.array([o.bbox for o in objects], dtype=np.float32).reshape(-1, 4)
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    scale = np.array(geo.scale * 2, dtype=np.float32)
    offset = np.array(geo.offset * 2, dtype=np.float32)
    size = prepared.tensor.shape[-1]
    return SceneTensors(
        pixels=prepared.tensor,
        boxes=xyxy * scale + offset,
        labels=np.array([o.category_id - 1 for o in objects], dtype=np.int64),
        classes=_letterbox_classes(class_map, geo.scale, geo.offset, size),
        prepared=prepared,
    )


def _letterbox_classes(
    class_map: np.ndarray, scale: tuple[float, float], offset: tuple[float, float], size: int
) -> np.ndarray:
    h, w = class_map.shape
    rw, rh = round(w * scale[0]), round(h * scale[1])
    resized = np.asarray(Image.fromarray(class_map).resize((rw, rh), Image.Resampling.NEAREST))
    out = np.full((size, size), IGNORE, dtype=np.uint8)
    x0, y0 = round(offset[0]), round(offset[1])
    out[y0 : y0 + rh, x0 : x0 + rw] = resized
    return out
