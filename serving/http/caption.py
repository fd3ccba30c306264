"""``POST /v1/caption``: images in, captions with their log-probabilities out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from serving.core.config import SequenceDecoding
from serving.errors import Unprocessable
from serving.http.docs import IMAGE_REQUEST_BODY
from serving.http.inputs import TaskOptions, parse_options, read_image_request
from serving.http.responses import ORJSONResponse
from serving.tasks.base import Deadline
from serving.tasks.caption.beam_search import DecodeOptions

router = APIRouter(tags=["tasks"])


class CaptionOptions(TaskOptions):
    beam_size: int | None = Field(default=None, ge=1, description="1 = greedy; model default")
    max_length: int | None = Field(default=None, ge=1, description="tokens, <eos> included")
    num_captions: int = Field(default=1, ge=1, description="best captions per image")
    length_penalty: float | None = Field(default=None, ge=0, description="GNMT alpha")

    def decode_options(self, post: SequenceDecoding) -> DecodeOptions:
        beam = self.beam_size or post.default_beam_size
        length = self.max_length or post.default_max_length
        if beam > post.max_beam_size:
            raise Unprocessable(f"beam_size: at most {post.max_beam_size} for this model")
        if length > post.max_length:
            raise Unprocessable(f"max_length: at most {post.max_length} for this model")
        if self.num_captions > beam:
            raise Unprocessable(f"num_captions: at most beam_size ({beam})")
        penalty = post.length_penalty if self.length_penalty is None else self.length_penalty
        return DecodeOptions(beam, length, penalty, self.num_captions)


class CaptionOut(BaseModel):
    text: str
    log_probability: float
    tokens: int


class ImageCaptions(BaseModel):
    captions: list[CaptionOut] = Field(description="best first")


class CaptionResponse(BaseModel):
    model: str
    version: int
    results: list[ImageCaptions] = Field(description="one entry per image, in order")


@router.post(
    "/v1/caption",
    response_model=CaptionResponse,
    openapi_extra=IMAGE_REQUEST_BODY,
    summary="Caption images (greedy or beam search, decoded by the server step by step)",
)
async def caption(request: Request) -> ORJSONResponse:
    state = request.app.state
    req = await read_image_request(request, state.settings)
    opts = parse_options(CaptionOptions, req.options)
    deadline = Deadline.after_ms(opts.timeout_ms or state.settings.default_timeout_ms)
    version = state.repository.for_task("captioning", opts.model, opts.version)
    request.state.model = version.name
    pipeline = version.pipeline
    decode = opts.decode_options(pipeline.post)
    decoder = state.repository.get(pipeline.decoder_model)
    results = await pipeline(req.images, decoder=decoder, options=decode, deadline=deadline)
    return ORJSONResponse(
        {
            "model": version.name,
            "version": version.version,
            "results": [{"captions": [c.__dict__ for c in captions]} for captions in results],
        }
    )
