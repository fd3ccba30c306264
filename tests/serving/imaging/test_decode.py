"""Image decoding: formats, colour modes and orientation all become upright RGB."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from serving.errors import InvalidImage, UnsupportedMedia
from serving.imaging.decode import decode_image

LIMIT = 10**8


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def gradient() -> np.ndarray:
    x = np.linspace(0, 255, 64, dtype=np.uint8)
    return np.stack(
        [np.tile(x, (48, 1)), np.tile(x[:48, None], (1, 64)), np.full((48, 64), 90, np.uint8)], -1
    )


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "BMP", "JPEG"])
def test_formats_decode_to_rgb(fmt: str) -> None:
    src = gradient()
    kw = {"quality": 100} if fmt in ("JPEG", "WEBP") else {}
    out = decode_image(encode(Image.fromarray(src), fmt, **kw), max_pixels=LIMIT)
    assert out.pixels.shape == (48, 64, 3) and out.pixels.dtype == np.uint8
    assert out.original_size == (64, 48)
    tolerance = 0 if fmt in ("PNG", "BMP") else 12
    assert np.abs(out.pixels.astype(int) - src).mean() <= tolerance


def test_modes_become_rgb() -> None:
    gray = Image.fromarray(gradient()[..., 0])
    assert np.array_equal(
        decode_image(encode(gray, "PNG"), max_pixels=LIMIT).pixels[..., 1], np.asarray(gray)
    )
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red composites to white
    assert (decode_image(encode(rgba, "PNG"), max_pixels=LIMIT).pixels == 255).all()
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    px = decode_image(encode(cmyk, "JPEG", quality=100), max_pixels=LIMIT).pixels
    assert px[..., 0].mean() > 240 and px[..., 1].mean() < 20
    deep = Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16))
    assert (decode_image(encode(deep, "PNG"), max_pixels=LIMIT).pixels == 255).all()


@pytest.mark.parametrize(("orientation", "turn"), [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(orientation: int, turn: int) -> None:
    src = gradient()
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.fromarray(src), "JPEG", quality=100, exif=exif.tobytes())
    out = decode_image(data, max_pixels=LIMIT)
    expected = np.rot90(src, k=turn)
    assert out.pixels.shape == expected.shape
    assert out.original_size == (expected.shape[1], expected.shape[0])
    assert np.abs(out.pixels.astype(int) - expected).mean() < 12


def test_broken_inputs() -> None:
    good = encode(Image.fromarray(gradient()), "JPEG")
    with pytest.raises(InvalidImage, match=r"truncated|corrupt"):
        decode_image(good[: len(good) // 2], max_pixels=LIMIT)
    with pytest.raises(InvalidImage, match="empty"):
        decode_image(b"", max_pixels=LIMIT)
    with pytest.raises(UnsupportedMedia):
        decode_image(b"GIF89a-but-not-really" * 3, max_pixels=LIMIT)
