"""Named colours for objects: the scene graph records the name, pixels get a jittered shade."""

from __future__ import annotations

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 160, 55),
    "blue": (35, 75, 215),
    "yellow": (240, 215, 35),
    "orange": (245, 135, 20),
    "purple": (130, 45, 175),
    "cyan": (40, 200, 215),
    "magenta": (225, 55, 195),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}


def jittered(name: str, rng: np.random.Generator, spread: int = 18) -> tuple[int, int, int]:
    """A shade of ``name``: each channel moved by up to ``spread``, staying in 0..255."""
    base = np.asarray(COLOURS[name], dtype=np.int32)
    shade = np.clip(base + rng.integers(-spread, spread + 1, size=3), 0, 255)
    return (int(shade[0]), int(shade[1]), int(shade[2]))
