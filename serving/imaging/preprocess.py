"""The config-driven image pipeline: encoded bytes -> model input tensor + geometry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from serving.core.config import Preprocess
from serving.errors import PayloadTooLarge
from serving.imaging.decode import DecodedImage, decode_image
from serving.imaging.transforms import (
    Geometry,
    apply_center_crop,
    apply_resize,
    apply_resize_and_crop,
    resized_size,
)

_NUMPY_DTYPES = {"FP32": np.float32, "FP16": np.float16, "UINT8": np.uint8}
# A shorter-side resize of a 1x6000 image would allocate gigabytes. Above this many output
# pixels a resize followed by a crop computes only the crop window (within one uint8 level of
# the full resize; below it the full resize runs, bit-exact with torchvision, unless the crop
# asks for ``window_only``), and a resize kept whole is refused.
MAX_RESIZED_PIXELS = 4_000_000


@dataclass(frozen=True)
class PreparedImage:
    tensor: np.ndarray  # one row of the model input: CHW or HWC, no batch axis
    geometry: Geometry


class ImagePreprocessor:
    """Runs one model's ``preprocess`` config; pure and thread-safe."""

    def __init__(self, config: Preprocess, *, max_pixels: int) -> None:
        self.config = config
        self.max_pixels = max_pixels
        norm = config.normalize
        std = np.asarray(norm.std, dtype=np.float32)
        # (x * scale - mean) / std == x * gain + bias: one fused multiply-add per pixel.
        self._gain = (norm.scale / std).astype(np.float32)
        self._bias = (-np.asarray(norm.mean, dtype=np.float32) / std).astype(np.float32)

    def needed_size(self, width: int, height: int) -> tuple[int, int]:
        """Smallest decode size that loses nothing for this pipeline."""
        if self.config.resize is None:
            return width, height
        tw, th = resized_size(self.config.resize, width, height)
        return max(1, min(width, tw)), max(1, min(height, th))

    def decode(self, data: bytes) -> DecodedImage:
        return decode_image(data, max_pixels=self.max_pixels, needed_size=self.needed_size)

    def __call__(self, data: bytes) -> PreparedImage:
        return self.from_decoded(self.decode(data))

    def from_decoded(self, image: DecodedImage) -> PreparedImage:
        img = Image.fromarray(image.pixels)
        width, height = image.original_size
        geometry = Geometry(original_size=image.original_size).then_scale(
            img.width / width, img.height / height
        )
        resize, crop = self.config.resize, self.config.crop
        tw, th = resized_size(resize, width, height) if resize is not None else (width, height)
        huge = tw * th > MAX_RESIZED_PIXELS
        fused = (
            apply_resize_and_crop(img, resize, crop, geometry)
            if resize is not None and crop is not None and (huge or crop.window_only)
            else None
        )
        if fused is not None:
            img, geometry = fused
        else:
            if resize is not None:
                if huge:
                    raise PayloadTooLarge(
                        f"a {width}x{height} image would be resized to {tw}x{th} for this "
                        f"model; the limit is {MAX_RESIZED_PIXELS} pixels (aspect ratio too "
                        "extreme)",
                        code="image_too_large",
                    )
                img, geometry = apply_resize(img, resize, geometry)
            if crop is not None:
                img, geometry = apply_center_crop(img, crop, geometry)
        return PreparedImage(tensor=self.to_tensor(np.asarray(img)), geometry=geometry)

    def input_size(self, tensor: np.ndarray) -> tuple[int, int]:
        """(width, height) of a tensor this preprocessor made."""
        if self.config.layout == "NCHW":
            return tensor.shape[-1], tensor.shape[-2]
        return tensor.shape[-2], tensor.shape[-3]

    def to_tensor(self, pixels: np.ndarray) -> np.ndarray:
        """HWC uint8 RGB -> the model's channel order, layout and dtype, normalised."""
        if self.config.channel_order == "BGR":
            pixels = pixels[..., ::-1]
        if self.config.datatype == "UINT8":
            out = pixels.transpose(2, 0, 1) if self.config.layout == "NCHW" else pixels
            return np.ascontiguousarray(out)
        # uint8 until here; one float32 buffer in the model's layout, written in place
        # (x * gain + bias per channel), with no float temporaries or transposed copies.
        h, w = pixels.shape[:2]
        if self.config.layout == "NCHW":
            out = np.empty((3, h, w), dtype=np.float32)
            for c in range(3):
                np.multiply(pixels[:, :, c], self._gain[c], out=out[c])
                out[c] += self._bias[c]
        else:
            out = np.empty((h, w, 3), dtype=np.float32)
            np.multiply(pixels, self._gain, out=out)
            out += self._bias
        return out.astype(_NUMPY_DTYPES[self.config.datatype], copy=False)
