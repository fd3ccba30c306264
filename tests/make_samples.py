"""Write the sample photos the demo page and README offer (``serving/http/static/sample-*``).

Run ``python -m tests.make_samples`` (needs the dev extra) to rebuild them; the output is
deterministic. Sources: scikit-image's chelsea (CC0), astronaut (public domain), our own scene
generator (test split), and an easy-VQA test image (MIT).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import ROOT

OUT = ROOT / "serving" / "http" / "static"
SCENE = ("test", 3, 7)  # split, index, seed: several shapes, none trained on


def _jpeg(pixels: np.ndarray, path: Path, quality: int = 85) -> None:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality, optimize=True)
    path.write_bytes(buf.getvalue())


def main() -> None:
    import easy_vqa
    import skimage.data

    from export.scenes.compose import compose_scene

    _jpeg(skimage.data.chelsea(), OUT / "sample-chelsea.jpg")
    _jpeg(skimage.data.astronaut(), OUT / "sample-astronaut.jpg")
    _jpeg(compose_scene(*SCENE).image, OUT / "sample-scene.jpg", quality=90)
    shape = Image.open(easy_vqa.get_test_image_paths()[0]).convert("RGB")
    shape.save(OUT / "sample-shape.png", optimize=True)
    for path in sorted(OUT.glob("sample-*")):
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
