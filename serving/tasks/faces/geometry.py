"""Choosing among detected faces, and the working resolution for detection.

Shared by the server and the export recipe's evaluation, so measured numbers describe the
served path.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def largest(boxes: np.ndarray) -> int:
    """Index of the face with the largest box area (ties: the first, i.e. best scored)."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return int(np.argmax(area))


def fit_within(pixels: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``pixels`` shrunk so its longer side is at most ``max_side``, and the factor applied."""
    h, w = pixels.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return pixels, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR)), scale


def box_template(relative: np.ndarray, size: int, face_fraction: float) -> np.ndarray:
    """Landmark template in a ``size`` square from landmarks relative to the face box (0..1).

    The box fills the central ``face_fraction`` of the square, as in FaceNet's training crops
    (MTCNN box plus a margin).
    """
    return (size * ((1 - face_fraction) / 2 + face_fraction * relative)).astype(np.float32)
