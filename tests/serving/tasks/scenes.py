"""Freshly composed test-split scenes (unseen seeds, test background photos) as uploads."""

from __future__ import annotations

import numpy as np

from export.scenes.compose import ComposedScene, compose_scene
from tests.conftest import jpeg_bytes

SEED = 7  # the shipped models were trained and scored on seed 0


def scenes(count: int) -> list[ComposedScene]:
    return [compose_scene("test", i, SEED) for i in range(count)]


def upload(scene: ComposedScene) -> bytes:
    return jpeg_bytes(scene.image, quality=92)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a [M, 4]`` with every box in ``b [K, 4]`` (x1 y1 x2 y2)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=-1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)
