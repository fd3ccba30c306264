"""Image preparation that keeps the decoded pixels, for tasks that may draw on them."""

from __future__ import annotations

from dataclasses import dataclass

from serving.imaging.decode import DecodedImage, decode_image
from serving.imaging.preprocess import ImagePreprocessor, PreparedImage


@dataclass(frozen=True)
class Prepared:
    decoded: DecodedImage
    prepared: PreparedImage


def prepare_keeping_pixels(
    preprocessor: ImagePreprocessor, data: bytes, *, full_resolution: bool = False
) -> Prepared:
    """Decode (reduced to what the model needs, unless a full-resolution drawing is wanted)
    and preprocess, keeping the decoded pixels."""
    if full_resolution:
        decoded = decode_image(data, max_pixels=preprocessor.max_pixels)
    else:
        decoded = preprocessor.decode(data)
    return Prepared(decoded, preprocessor.from_decoded(decoded))
