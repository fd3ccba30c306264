"""``/v1/caption``: its options, its response, and the decoding limits the model sets."""

from __future__ import annotations

from pydantic import BaseModel, Field

from serving.core.config import SequenceDecoding
from serving.errors import Unprocessable
from serving.tasks.caption.beam_search import DecodeOptions
from serving.tasks.caption.decode_loop import Caption
from serving.tasks.caption.pipeline import CaptioningPipeline
from serving.tasks.contract import ModelResponse, Task, TaskOptions, TaskRequest


class CaptionOptions(TaskOptions):
    beam_size: int | None = Field(default=None, ge=1, description="1 = greedy; model default")
    max_length: int | None = Field(default=None, ge=1, description="tokens, <eos> included")
    num_captions: int = Field(default=1, ge=1, description="best captions per image")
    length_penalty: float | None = Field(default=None, ge=0, description="GNMT alpha")

    def decode_options(self, post: SequenceDecoding) -> DecodeOptions:
        """The resolved options, checked against the model's limits."""
        beam, length, penalty = self.beam_size, self.max_length, self.length_penalty
        assert beam is not None and length is not None and penalty is not None  # resolved
        if beam > post.max_beam_size:
            raise Unprocessable(f"beam_size: at most {post.max_beam_size} for this model")
        if length > post.max_length:
            raise Unprocessable(f"max_length: at most {post.max_length} for this model")
        if self.num_captions > beam:
            raise Unprocessable(f"num_captions: at most beam_size ({beam})")
        return DecodeOptions(beam, length, penalty, self.num_captions)


class ImageCaptions(BaseModel):
    captions: list[Caption] = Field(description="best first")


class CaptionResponse(ModelResponse):
    results: list[ImageCaptions] = Field(description="one entry per image, in order")


class CaptionTask(Task[CaptioningPipeline, CaptionOptions, CaptionResponse]):
    """Captions with their log-probabilities; decoded by the server step by step, each step
    batched across every sequence in flight."""

    path = "/v1/caption"
    summary = "Caption images (greedy or beam search, decoded by the server step by step)"
    model_task = "captioning"
    options = CaptionOptions
    response = CaptionResponse

    async def run(
        self, pipeline: CaptioningPipeline, request: TaskRequest[CaptionOptions]
    ) -> CaptionResponse:
        decode = request.options.decode_options(pipeline.post)
        results = await pipeline.caption(request.images, options=decode, deadline=request.deadline)
        return CaptionResponse(
            model=pipeline.version.name,
            version=pipeline.version.version,
            results=[ImageCaptions(captions=c) for c in results],
        )
