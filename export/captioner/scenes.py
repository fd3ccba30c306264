"""The scenes the captioner sees: ``export.scenes`` with at most three large shapes, as JPEG.

Few, large objects let a caption name them all; the JPEG bytes are what a client would upload.
No torch here, so the HTTP tests can make the same scenes.
"""

from __future__ import annotations

import io

from PIL import Image

from export.scenes.compose import SceneSpec, compose_scene
from export.scenes.graph import Scene

SPEC = SceneSpec(min_side=192, max_side=256, max_objects=3, min_size=36, max_size_frac=0.45)
JPEG_QUALITY = 92


def scene_jpeg(split: str, index: int, seed: int) -> tuple[bytes, Scene]:
    """Scene ``index`` of ``split`` as JPEG bytes, with its graph."""
    composed = compose_scene(split, index, seed, SPEC)
    buf = io.BytesIO()
    Image.fromarray(composed.image).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue(), composed.scene
