"""Tiny files that decode to costly work: bounded in time and memory, or refused."""

from __future__ import annotations

import io
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from serving.core.config import load_config
from serving.errors import PayloadTooLarge
from serving.imaging.preprocess import ImagePreprocessor
from tests.conftest import MODEL_STORE
from tests.server import LiveServer

MB = 1024 * 1024


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def peak_rss_growth(fn: object) -> tuple[float, int]:
    """Seconds and bytes of peak-RSS growth of ``fn()`` (Linux: VmHWM reset via clear_refs)."""

    def hwm() -> int:
        with open("/proc/self/status") as f:
            line = next(ln for ln in f if ln.startswith("VmHWM"))
        return int(line.split()[1]) * 1024

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = hwm()
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started, hwm() - before


@pytest.mark.parametrize("size", [(1, 6000), (6000, 1), (2, 40000), (40000, 3)])
def test_elongated_images_cost_what_their_pixels_cost(size: tuple[int, int]) -> None:
    """Shorter-side resize + crop of a 1x6000 image computes only the crop window."""
    config = load_config(MODEL_STORE / "mobilenet_v2" / "config.yaml").preprocess
    assert config is not None
    pre = ImagePreprocessor(config, max_pixels=50_000_000)
    data = png(*size)
    assert len(data) < 1000
    out = pre(data)  # warm up Pillow's codecs
    assert out.tensor.shape == (3, 224, 224)
    # The single colour survives the resize: the pixels are right, not just the shape.
    expected = (np.array([200, 40, 90]) / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(out.tensor[:, 112, 112], expected, atol=0.02)
    seconds, grown = peak_rss_growth(lambda: pre(data))
    print(f"{size[0]}x{size[1]} PNG ({len(data)} B): {seconds * 1000:.1f} ms, +{grown / MB:.1f} MB")
    assert grown < 50 * MB
    assert seconds < 1.0  # was 8.8 s for 1x6000; a loose bound, timing is a benchmark's job


def test_full_decode_beyond_the_bound_is_refused_over_http(
    server: LiveServer, photos: dict[str, bytes]
) -> None:
    bomb = png(7000, 7000)  # ~160 kB, 49 MP: under max_image_pixels, over the decode bound
    r = httpx.post(
        server.url + "/v1/classify", content=bomb, headers={"Content-Type": "image/png"}, timeout=30
    )
    assert r.status_code == 413 and r.json()["code"] == "image_too_large"
    thin = httpx.post(
        server.url + "/v1/classify",
        content=png(1, 6000),
        headers={"Content-Type": "image/png"},
        timeout=30,
    )
    assert thin.status_code == 200 and thin.json()["results"][0]["predictions"]
    # A JPEG of the same size decodes reduced (1/8) and is served.
    big = io.BytesIO()
    Image.new("RGB", (7000, 7000), (90, 120, 40)).save(big, format="JPEG", quality=80)
    r = httpx.post(
        server.url + "/v1/classify",
        content=big.getvalue(),
        headers={"Content-Type": "image/jpeg"},
        timeout=30,
    )
    assert r.status_code == 200


def test_no_crop_resize_that_would_explode_is_refused() -> None:
    config = load_config(MODEL_STORE / "mobilenet_v2" / "config.yaml").preprocess
    assert config is not None
    no_crop = config.model_copy(update={"crop": None})
    with pytest.raises(PayloadTooLarge, match="aspect ratio too extreme"):
        ImagePreprocessor(no_crop, max_pixels=50_000_000)(png(1, 6000))
