"""``POST /v1/classify``: images in, top-k labels out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from serving.http.docs import IMAGE_REQUEST_BODY
from serving.http.inputs import TaskOptions, parse_options, read_image_request
from serving.http.responses import ORJSONResponse
from serving.tasks.base import Deadline

router = APIRouter(tags=["tasks"])


class ClassifyOptions(TaskOptions):
    top_k: int = Field(default=5, ge=1, le=1000)


class Label(BaseModel):
    label: str
    class_id: int
    probability: float


class ImageClassification(BaseModel):
    predictions: list[Label]


class ClassifyResponse(BaseModel):
    model: str
    version: int
    results: list[ImageClassification] = Field(description="one entry per image, in order")


@router.post(
    "/v1/classify",
    response_model=ClassifyResponse,
    openapi_extra=IMAGE_REQUEST_BODY,
    summary="Classify images (top-k labels with probabilities)",
)
async def classify(request: Request) -> ORJSONResponse:
    state = request.app.state
    req = await read_image_request(request, state.settings)
    opts = parse_options(ClassifyOptions, req.options)
    deadline = Deadline.after_ms(opts.timeout_ms or state.settings.default_timeout_ms)
    version = state.repository.for_task("classification", opts.model, opts.version)
    request.state.model = version.name
    results = await version.pipeline(req.images, k=opts.top_k, deadline=deadline)
    return ORJSONResponse(
        {
            "model": version.name,
            "version": version.version,
            "results": [
                {"predictions": [p.__dict__ for p in predictions]} for predictions in results
            ],
        }
    )
