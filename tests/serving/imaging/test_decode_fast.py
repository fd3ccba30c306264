"""The simplejpeg fast path decodes exactly the pixels the Pillow path does."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from serving.errors import InvalidImage
from serving.imaging import decode
from serving.imaging.decode import decode_image

LIMIT = 10**9


def jpeg(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, **kw)
    return buf.getvalue()


def both(data: bytes, need: tuple[int, int] | None, monkeypatch: pytest.MonkeyPatch):
    """(fast path, Pillow path) decodes of the same bytes."""
    assert decode.simplejpeg is not None, "the dev extra installs simplejpeg"
    sized = None if need is None else (lambda w, h: need)
    fast = decode_image(data, max_pixels=LIMIT, needed_size=sized)
    with monkeypatch.context() as m:
        m.setattr(decode, "simplejpeg", None)
        slow = decode_image(data, max_pixels=LIMIT, needed_size=sized)
    return fast, slow


@pytest.mark.parametrize(
    ("size", "need"),
    [((451, 300), (385, 256)), ((4032, 2688), (384, 256)), ((1000, 700), (300, 210)), (None, None)],
)
def test_same_pixels_at_every_reduction(size, need, monkeypatch) -> None:
    img = Image.fromarray(skimage.data.coffee())
    if size is not None:
        img = img.resize(size, Image.Resampling.BILINEAR)
    fast, slow = both(jpeg(img), need, monkeypatch)
    assert fast.pixels.shape == slow.pixels.shape
    assert fast.original_size == slow.original_size
    np.testing.assert_array_equal(fast.pixels, slow.pixels)


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_same_pixels_with_exif_orientation(orientation: int, monkeypatch) -> None:
    img = Image.fromarray(skimage.data.chelsea()).resize((900, 600))
    exif = Image.Exif()
    exif[0x0112] = orientation
    fast, slow = both(jpeg(img, exif=exif.tobytes()), (200, 200), monkeypatch)
    assert fast.original_size == slow.original_size
    np.testing.assert_array_equal(fast.pixels, slow.pixels)


def test_greyscale_jpeg_becomes_the_same_rgb(monkeypatch) -> None:
    grey = Image.fromarray(skimage.data.camera())
    fast, slow = both(jpeg(grey), (256, 256), monkeypatch)
    assert fast.pixels.shape[2] == 3
    np.testing.assert_array_equal(fast.pixels, slow.pixels)


def test_truncated_jpeg_is_a_400() -> None:
    data = jpeg(Image.fromarray(skimage.data.chelsea()))
    with pytest.raises(InvalidImage):
        decode_image(data[: len(data) // 2], max_pixels=LIMIT)
