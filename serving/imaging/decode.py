"""Image decoding: bytes in, upright RGB ``uint8`` array out, at no more resolution than needed.

Phone photos are 8-12 MP; decoding them in full costs tens of milliseconds. JPEG can decode at
1/2, 1/4 or 1/8 scale inside the IDCT (Pillow's ``draft``), so callers pass the smallest size
they will resize to and we decode just above it.

Pillow reads the header (format, size, EXIF orientation) in every case. The pixels of an RGB or
greyscale JPEG are decoded by ``simplejpeg`` when it is installed (the ``fast-jpeg`` extra):
the same libjpeg-turbo, the same scale factor Pillow's draft would pick, bit-identical pixels,
without Pillow's per-image overhead (``loadtest/benchmarks/decoders.py`` measures both and
checks parity). Everything else, and every JPEG without it, goes through Pillow.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from serving.errors import InvalidImage, PayloadTooLarge, UnsupportedMedia

try:  # optional: the fast-jpeg extra
    import simplejpeg
except ImportError:  # pragma: no cover - depends on the installed extras
    simplejpeg = None

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_EXIF_ORIENTATION = 0x0112
# Pixels actually decoded (after JPEG's reduced decode). PNG, WebP and the rest always decode in
# full: a 160 kB single-colour 7000x7000 PNG costs ~4 s and ~300 MB; at this bound ~1/3 of that.
MAX_DECODED_PIXELS = 16_000_000
_TRANSPOSE = {  # EXIF orientation -> the transpose that makes the image upright (as Pillow's)
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # HxWx3 uint8, upright
    original_size: tuple[int, int]  # (width, height) of the upright full-resolution image

    @property
    def decode_scale(self) -> float:
        """Full-resolution pixels per decoded pixel (1.0 unless decoded reduced)."""
        return self.original_size[0] / self.pixels.shape[1]


SizeFor = Callable[[int, int], tuple[int, int]]


def decode_image(
    data: bytes, *, max_pixels: int, needed_size: SizeFor | None = None
) -> DecodedImage:
    """Decode ``data``.

    ``needed_size(width, height)`` gives the smallest upright size the caller will use for an
    upright image of that size; JPEGs are then decoded reduced, but never below it.
    """
    if not data:
        raise InvalidImage("empty image upload", code="empty_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise UnsupportedMedia(
            f"not a decodable image (supported: {', '.join(SUPPORTED_FORMATS)})"
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PayloadTooLarge(str(exc), code="image_too_large") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImage(f"corrupt or truncated image: {exc}") from exc
    if img.format not in SUPPORTED_FORMATS:
        raise UnsupportedMedia(f"image format {img.format} is not supported")
    width, height = img.size
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
            code="image_too_large",
        )
    orientation = _orientation(img)
    if orientation in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    want = None
    if needed_size is not None and img.format == "JPEG":
        want = needed_size(width, height)
        want = want[::-1] if orientation in _TRANSPOSING_ORIENTATIONS else want
    if want is None:
        _check_decoded(img.format, img.width, img.height)
    if simplejpeg is not None and img.format == "JPEG" and img.mode in ("RGB", "L"):
        pixels = _decode_jpeg(data, img.size, want)
        if orientation in _TRANSPOSE:
            pixels = np.asarray(Image.fromarray(pixels).transpose(_TRANSPOSE[orientation]))
        return DecodedImage(pixels=pixels, original_size=(width, height))
    if want is not None:
        img.draft(None, want)
        _check_decoded(img.format, img.width, img.height)
    try:
        img.load()
        img = ImageOps.exif_transpose(img) if orientation not in (0, 1) else img
        rgb = _to_rgb(img)
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImage(f"corrupt or truncated image: {exc}") from exc
    return DecodedImage(pixels=np.asarray(rgb), original_size=(width, height))


def _decode_jpeg(data: bytes, size: tuple[int, int], want: tuple[int, int] | None) -> np.ndarray:
    """libjpeg-turbo through simplejpeg, at the scale Pillow's ``draft`` would choose."""
    width, height = size
    scale = 1
    if want is not None:
        fits = min(width // max(1, want[0]), height // max(1, want[1]))
        scale = next(s for s in (8, 4, 2, 1) if fits >= s or s == 1)
    try:
        return simplejpeg.decode_jpeg(
            data,
            colorspace="RGB",
            min_width=math.ceil(width / scale),
            min_height=math.ceil(height / scale),
        )
    except ValueError as exc:
        raise InvalidImage(f"corrupt or truncated image: {exc}") from exc


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not fail an otherwise good image
        return 1


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(arr * (255.0 / peak), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _check_decoded(fmt: str | None, width: int, height: int) -> None:
    if width * height > MAX_DECODED_PIXELS:
        raise PayloadTooLarge(
            f"a {fmt} image of {width}x{height} pixels would be decoded in full; "
            f"the limit is {MAX_DECODED_PIXELS} pixels (JPEGs are decoded reduced)",
            code="image_too_large",
        )
