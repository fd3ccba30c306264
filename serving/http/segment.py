"""``POST /v1/segment``: images in, per-pixel classes out as COCO RLE or PNG, with areas."""

from __future__ import annotations

import base64
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from serving.http.docs import IMAGE_REQUEST_BODY
from serving.http.inputs import TaskOptions, parse_options, read_image_request
from serving.http.responses import ORJSONResponse
from serving.tasks.base import Deadline

router = APIRouter(tags=["tasks"])


class SegmentOptions(TaskOptions):
    mask_format: Literal["rle", "png"] = Field(
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


class SegmentResponse(BaseModel):
    model: str
    version: int
    labels: list[str] = Field(description="class id -> label")
    results: list[ImageSegmentation] = Field(description="one entry per image, in order")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@router.post(
    "/v1/segment",
    response_model=SegmentResponse,
    response_model_exclude_none=True,
    openapi_extra=IMAGE_REQUEST_BODY,
    summary="Segment images (per-pixel classes, class areas)",
)
async def segment(request: Request) -> ORJSONResponse:
    state = request.app.state
    req = await read_image_request(request, state.settings)
    opts = parse_options(SegmentOptions, req.options)
    deadline = Deadline.after_ms(opts.timeout_ms or state.settings.default_timeout_ms)
    version = state.repository.for_task("segmentation", opts.model, opts.version)
    request.state.model = version.name
    results = await version.pipeline(
        req.images, mask_format=opts.mask_format, render=opts.render, deadline=deadline
    )
    body = []
    for r in results:
        item: dict[str, object] = {
            "width": r.width,
            "height": r.height,
            "classes": [c.__dict__ for c in r.classes],
        }
        if r.masks is not None:
            item["masks"] = r.masks
        if r.png is not None:
            item["mask_png"] = _b64(r.png)
        if r.rendered is not None:
            item["rendered_png"] = _b64(r.rendered)
        body.append(item)
    return ORJSONResponse(
        {
            "model": version.name,
            "version": version.version,
            "labels": version.pipeline.labels,
            "results": body,
        }
    )
