"""Face alignment: a similarity transform (Umeyama, 1991) from five landmarks to a template.

Rotation, uniform scale and translation only, so faces are never sheared or stretched; the
least-squares fit spreads landmark noise over all five points.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The ``2x3`` similarity ``M`` minimising ``sum |M @ [src, 1] - dst|^2`` over ``[K, 2]``."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection is not a similarity
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    var = (s**2).sum() / len(src)
    scale = float(np.trace(np.diag(sig) @ sign) / var) if var > 0 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mu_d - matrix[:, :2] @ mu_s
    return matrix


def warp(pixels: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """``size`` x ``size`` crop where output pixel ``M @ [x, y, 1]`` samples input ``(x, y)``.

    Pixel centres are mapped (Pillow samples at ``+0.5``), outside the image is black.
    """
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(full)
    # Pillow samples input ``A @ (out + 0.5) + b`` in edge coordinates (pixel i spans [i, i+1))
    a = inverse[:2, :2]
    b = inverse[:2, 2] + 0.5 - a @ np.array([0.5, 0.5])
    coeffs = (a[0, 0], a[0, 1], b[0], a[1, 0], a[1, 1], b[1])
    img = Image.fromarray(pixels).transform(
        (size, size), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR
    )
    return np.asarray(img)


def align(pixels: np.ndarray, landmarks: np.ndarray, template: np.ndarray, size: int) -> np.ndarray:
    """The face with these five landmarks, moved onto ``template`` in a ``size``-pixel square."""
    return warp(pixels, umeyama(landmarks, template), size)
