"""Umeyama similarity fit and the warp that applies it."""

from __future__ import annotations

import numpy as np

from serving.tasks.faces.align import align, umeyama, warp


def _similarity(angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, shift[0]], [scale * s, scale * c, shift[1]]])


def test_umeyama_recovers_an_exact_similarity() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (5, 2))
    truth = _similarity(0.4, 0.7, (12.0, -30.0))
    dst = src @ truth[:, :2].T + truth[:, 2]
    np.testing.assert_allclose(umeyama(src, dst), truth, atol=1e-9)


def test_umeyama_never_reflects() -> None:
    src = np.random.default_rng(1).uniform(0, 100, (5, 2))
    m = umeyama(src, src * [-1, 1])
    assert np.linalg.det(m[:, :2]) > 0  # the best rotation, not the mirror image


def test_warp_moves_pixel_centres_exactly() -> None:
    img = np.zeros((50, 60, 3), dtype=np.uint8)
    img[20, 30] = 255
    out = warp(img, np.array([[1.0, 0, 7], [0, 1.0, -4]]), 64)
    assert np.argwhere(out[..., 0] > 0).tolist() == [[16, 37]]


def test_align_puts_landmarks_on_the_template() -> None:
    template = np.array([[20, 24], [44, 24], [32, 36], [22, 48], [42, 48]], dtype=np.float32)
    to_photo = _similarity(-0.3, 3.0, (80.0, 60.0))
    landmarks = template @ to_photo[:, :2].T + to_photo[:, 2]
    img = np.zeros((300, 300, 3), dtype=np.uint8)
    for x, y in np.round(landmarks).astype(int):
        img[y - 3 : y + 4, x - 3 : x + 4] = 255
    out = align(img, landmarks, template, 64)[..., 0].astype(float)
    for x, y in template.astype(int):
        assert out[y, x] > 200  # each landmark's blob is centred where the template says
        assert (
            out[y - 3 : y + 4, x - 3 : x + 4].sum() > 0.9 * out[y - 6 : y + 7, x - 6 : x + 7].sum()
        )
