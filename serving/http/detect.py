"""``POST /v1/detect``: images in, labelled boxes in original pixels out (optionally drawn)."""

from __future__ import annotations

import base64

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, field_validator

from serving.http.docs import IMAGE_REQUEST_BODY
from serving.http.inputs import TaskOptions, parse_options, read_image_request
from serving.http.responses import ORJSONResponse
from serving.tasks.base import Deadline

router = APIRouter(tags=["tasks"])


def split_names(value: object) -> object:
    """``"a,b"`` (query string, form field) or ``["a", "b"]`` (JSON) -> a list of names."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class DetectOptions(TaskOptions):
    score_threshold: float | None = Field(
        default=None, ge=0, le=1, description="lowest score returned; the model's default if unset"
    )
    max_detections: int | None = Field(default=None, ge=1, le=1000, description="per image")
    classes: list[str] | None = Field(
        default=None, description="only these labels (list, or comma-separated string)"
    )
    render: bool = Field(default=False, description="also return a PNG with the boxes drawn")

    _split = field_validator("classes", mode="before")(split_names)


class Detection(BaseModel):
    label: str
    class_id: int
    score: float
    box: list[float] = Field(description="x1, y1, x2, y2 in original image pixels")


class ImageDetections(BaseModel):
    width: int
    height: int
    detections: list[Detection] = Field(description="best score first")
    rendered_png: str | None = Field(default=None, description="base64 PNG, if render=true")


class DetectResponse(BaseModel):
    model: str
    version: int
    results: list[ImageDetections] = Field(description="one entry per image, in order")


@router.post(
    "/v1/detect",
    response_model=DetectResponse,
    response_model_exclude_none=True,
    openapi_extra=IMAGE_REQUEST_BODY,
    summary="Detect objects (labelled boxes with scores)",
)
async def detect(request: Request) -> ORJSONResponse:
    state = request.app.state
    req = await read_image_request(request, state.settings)
    opts = parse_options(DetectOptions, req.options)
    deadline = Deadline.after_ms(opts.timeout_ms or state.settings.default_timeout_ms)
    version = state.repository.for_task("detection", opts.model, opts.version)
    request.state.model = version.name
    pipeline = version.pipeline
    params = pipeline.params(opts.score_threshold, opts.max_detections, opts.classes)
    results = await pipeline(req.images, params=params, render=opts.render, deadline=deadline)
    body = []
    for r in results:
        item: dict[str, object] = {
            "width": r.width,
            "height": r.height,
            "detections": [d.__dict__ for d in r.detections],
        }
        if r.rendered is not None:
            item["rendered_png"] = base64.b64encode(r.rendered).decode("ascii")
        body.append(item)
    return ORJSONResponse({"model": version.name, "version": version.version, "results": body})
