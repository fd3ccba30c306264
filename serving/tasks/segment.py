"""Semantic segmentation: preprocess -> batched model -> class map in original pixels (scores
at a fraction of the input's size resized bilinearly first), encoded."""

from __future__ import annotations

import base64
from concurrent.futures import Executor
from functools import partial
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from serving.core.config import PixelSegmentation
from serving.core.deadline import Deadline
from serving.core.runtime import Tensors
from serving.imaging.prepared import Prepared
from serving.imaging.render import overlay_classes, palette, png
from serving.imaging.segmentation import area_fractions, class_map_of, png_bytes, rle_encode
from serving.settings import Settings
from serving.tasks.contract import ModelResponse, Task, TaskOptions, TaskRequest
from serving.tasks.image_pipeline import ImagePipeline

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion

MaskFormat = Literal["rle", "png"]


class SegmentOptions(TaskOptions):
    mask_format: MaskFormat = Field(
        default="rle",
        description="rle: one COCO compressed RLE per class present (background left out); "
        "png: one PNG whose pixel values are class ids",
    )
    render: bool = Field(default=False, description="also return a PNG with the classes drawn")


class ClassArea(BaseModel):
    label: str
    class_id: int
    fraction: float = Field(description="share of the image's pixels")


class Rle(BaseModel):
    size: list[int] = Field(description="[height, width]")
    counts: str = Field(description="COCO compressed RLE (pycocotools.mask.decode reads it)")


class ImageSegmentation(BaseModel):
    width: int
    height: int
    classes: list[ClassArea] = Field(description="classes present, largest first")
    masks: dict[str, Rle] | None = Field(default=None, description="label -> RLE (mask_format=rle)")
    mask_png: str | None = Field(default=None, description="base64 PNG (mask_format=png)")
    rendered_png: str | None = Field(default=None, description="base64 PNG, if render=true")


class SegmentResponse(ModelResponse):
    labels: list[str] = Field(description="class id -> label")
    results: list[ImageSegmentation] = Field(description="one entry per image, in order")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class SegmentationPipeline(ImagePipeline):
    needs, needs_kind = PixelSegmentation, "segmentation"

    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        super().__init__(version, settings, pool)
        spec = next(o for o in version.config.outputs if o.name == self.post.output)
        rank = len(spec.shape) - (1 if version.config.batching.batched else 0)
        if rank not in (3, 4) or (rank == 4 and spec.shape[-4] not in (-1, 1)):
            raise ValueError(
                f"output {spec.name!r} has shape {spec.shape}, expected class scores "
                "[N, C, H, W] (or [C, H, W] without a batch axis)"
            )
        self.labels = self.labels_for(self.post.output, axis=-3)
        self.colours = palette(len(self.labels), background=self.post.background)

    async def segment(
        self, images: list[bytes], *, mask_format: MaskFormat, render: bool, deadline: Deadline
    ) -> list[ImageSegmentation]:
        prepared, outputs = await self.infer_keeping_pixels(
            images, deadline, full_resolution=render
        )
        finish = partial(self._finish, mask_format=mask_format, render=render)
        return await self.offload_each(finish, prepared, outputs)

    def _finish(
        self, image: Prepared, out: Tensors, *, mask_format: MaskFormat, render: bool
    ) -> ImageSegmentation:
        scores = out[self.post.output]
        scores = scores.reshape(scores.shape[-3:])  # a model without a batch axis may keep [1, ..]
        size = self.preprocessor.input_size(image.prepared.tensor)
        classes = class_map_of(scores, image.prepared.geometry, size)
        fractions = area_fractions(classes, len(self.labels))
        present = sorted(
            (i for i in range(len(self.labels)) if fractions[i] > 0), key=lambda i: -fractions[i]
        )
        areas = [
            ClassArea(label=self.labels[i], class_id=i, fraction=float(fractions[i]))
            for i in present
        ]
        masks = None
        if mask_format == "rle":
            masks = {
                self.labels[i]: Rle(**rle_encode(classes == i))
                for i in present
                if i != self.post.background
            }
        encoded = _b64(png_bytes(classes, self.colours)) if mask_format == "png" else None
        rendered = None
        if render:
            img = overlay_classes(
                image.decoded.pixels, classes, self.colours, background=self.post.background
            )
            rendered = _b64(png(img))
        width, height = image.decoded.original_size
        return ImageSegmentation(
            width=width,
            height=height,
            classes=areas,
            masks=masks,
            mask_png=encoded,
            rendered_png=rendered,
        )


class Segment(Task[SegmentationPipeline, SegmentOptions, SegmentResponse]):
    """Per-pixel classes in original-image pixels, as COCO RLE or a PNG, with class areas."""

    path = "/v1/segment"
    summary = "Segment images (per-pixel classes, class areas)"
    model_task = "segmentation"
    options = SegmentOptions
    response = SegmentResponse
    exclude_none = True

    async def run(
        self, pipeline: SegmentationPipeline, request: TaskRequest[SegmentOptions]
    ) -> SegmentResponse:
        results = await pipeline.segment(
            request.images,
            mask_format=request.options.mask_format,
            render=request.options.render,
            deadline=request.deadline,
        )
        return SegmentResponse(
            model=pipeline.version.name,
            version=pipeline.version.version,
            labels=pipeline.labels,
            results=results,
        )
