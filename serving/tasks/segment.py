"""Semantic segmentation: letterbox -> batched model -> class map in original pixels, encoded."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Literal

from serving.core.config import PixelSegmentation
from serving.core.runtime import Tensors
from serving.imaging.prepared import Prepared, prepare_keeping_pixels
from serving.imaging.preprocess import ImagePreprocessor
from serving.imaging.render import overlay_classes, palette, png
from serving.imaging.segmentation import (
    area_fractions,
    class_map,
    png_bytes,
    rle_encode,
    to_original,
)
from serving.settings import Settings
from serving.tasks.base import Deadline, prepare_all, read_lines

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion

MaskFormat = Literal["rle", "png"]


@dataclass(frozen=True)
class ClassArea:
    label: str
    class_id: int
    fraction: float  # of the image's pixels


@dataclass(frozen=True)
class ImageSegmentation:
    width: int
    height: int
    classes: list[ClassArea]  # classes present, largest first
    masks: dict[str, dict[str, object]] | None  # label -> COCO RLE (format "rle")
    png: bytes | None  # class-id PNG (format "png")
    rendered: bytes | None = None


class SegmentationPipeline:
    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        config = version.config
        if config.preprocess is None or not isinstance(config.postprocess, PixelSegmentation):
            raise ValueError("a segmentation model needs preprocess and segmentation postprocess")
        self.version = version
        self.pool = pool
        self.post = config.postprocess
        self.preprocessor = ImagePreprocessor(
            config.preprocess, max_pixels=settings.max_image_pixels
        )
        self.labels = read_lines(version.folder.parent / self.post.labels)
        classes = next(o.shape[1] for o in config.outputs if o.name == self.post.output)
        if classes > 0 and classes != len(self.labels):
            raise ValueError(
                f"{self.post.labels} has {len(self.labels)} labels for {classes} classes"
            )
        self.colours = palette(len(self.labels), background=self.post.background)

    async def __call__(
        self, images: list[bytes], *, mask_format: MaskFormat, render: bool, deadline: Deadline
    ) -> list[ImageSegmentation]:
        prepared = await prepare_all(
            self.pool,
            partial(prepare_keeping_pixels, self.preprocessor, full_resolution=render),
            images,
        )
        rows = [{self.preprocessor.config.input: p.prepared.tensor} for p in prepared]
        outputs = await self.version.infer(rows, timeout_s=deadline.remaining_s())
        loop = asyncio.get_running_loop()
        return list(
            await asyncio.gather(
                *(
                    loop.run_in_executor(self.pool, self._finish, p, out, mask_format, render)
                    for p, out in zip(prepared, outputs, strict=True)
                )
            )
        )

    def _finish(
        self, image: Prepared, out: Tensors, mask_format: MaskFormat, render: bool
    ) -> ImageSegmentation:
        classes = to_original(class_map(out[self.post.output]), image.prepared.geometry)
        fractions = area_fractions(classes, len(self.labels))
        present = sorted(
            (i for i in range(len(self.labels)) if fractions[i] > 0), key=lambda i: -fractions[i]
        )
        areas = [ClassArea(self.labels[i], i, float(fractions[i])) for i in present]
        masks = None
        if mask_format == "rle":
            masks = {
                self.labels[i]: rle_encode(classes == i)
                for i in present
                if i != self.post.background
            }
        encoded = png_bytes(classes, self.colours) if mask_format == "png" else None
        rendered = None
        if render:
            img = overlay_classes(
                image.decoded.pixels, classes, self.colours, background=self.post.background
            )
            rendered = png(img)
        width, height = image.decoded.original_size
        return ImageSegmentation(width, height, areas, masks, encoded, rendered)
