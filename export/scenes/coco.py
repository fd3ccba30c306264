"""COCO-format annotations for composed scenes: instances (boxes + RLE masks) and categories."""

from __future__ import annotations

from typing import Any

import numpy as np
import pycocotools.mask as mask_utils

from export.scenes.graph import Scene
from export.scenes.shapes import CLASSES

CATEGORIES = [
    {"id": i, "name": name, "supercategory": "shape"} for i, name in enumerate(CLASSES, 1)
]


def rle(mask: np.ndarray) -> dict[str, Any]:
    """Compressed COCO RLE of a HxW bool mask, with ``counts`` as a JSON-friendly string."""
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def image_entry(scene: Scene) -> dict[str, Any]:
    return {
        "id": scene.image_id,
        "file_name": scene.file_name,
        "width": scene.width,
        "height": scene.height,
    }


def annotations(scene: Scene, masks: list[np.ndarray], first_id: int) -> list[dict[str, Any]]:
    """One COCO annotation per object, ids counting up from ``first_id``."""
    return [
        {
            "id": first_id + k,
            "image_id": scene.image_id,
            "category_id": obj.category_id,
            "bbox": [float(v) for v in obj.bbox],
            "area": float(obj.area),
            "segmentation": rle(mask),
            "iscrowd": 0,
        }
        for k, (obj, mask) in enumerate(zip(scene.objects, masks, strict=True))
    ]


def semantic_mask(
    height: int, width: int, category_ids: list[int], masks: list[np.ndarray]
) -> np.ndarray:
    """HxW uint8 class map (0 = background) from the objects' visible masks."""
    out = np.zeros((height, width), dtype=np.uint8)
    for category_id, mask in zip(category_ids, masks, strict=True):
        out[mask] = category_id
    return out
