"""Visual question answering: one image, several questions -> answers with probabilities.

The model is split in two (``image_encoder`` in its config): the encoder model turns the image
into a vector once per request, however many questions it carries; each question is then one
row (image vector, token ids, length) of the question head, so questions about the same image,
and those of concurrent requests, share ONNX Runtime calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, Field

from serving.core.config import SoftmaxTopK
from serving.core.deadline import Deadline
from serving.errors import BadRequest, PayloadTooLarge
from serving.imaging.preprocess import ImagePreprocessor
from serving.imaging.scores import softmax, top_k
from serving.settings import Settings
from serving.tasks.contract import ModelResponse, Pipeline, Task, TaskOptions, TaskRequest
from serving.tasks.image_pipeline import infer_prepared
from serving.text import EncodedText, Vocabulary, encode

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion

MAX_QUESTIONS = 64


class VqaOptions(TaskOptions):
    question: str | list[str] | None = Field(default=None, description="one question or several")
    questions: list[str] | None = Field(default=None, description="several questions")
    top_k: int | None = Field(
        default=None, ge=1, le=1000, description="answers per question; the model's default_top_k"
    )

    def all_questions(self) -> list[str]:
        one = [self.question] if isinstance(self.question, str) else self.question or []
        return [*one, *(self.questions or [])]


class Answer(BaseModel):
    label: str
    class_id: int
    probability: float


class QuestionAnswers(BaseModel):
    question: str
    answers: list[Answer] = Field(description="best first")
    unknown_words: int = Field(description="question words outside the model's vocabulary")


class VqaResponse(ModelResponse):
    results: list[QuestionAnswers] = Field(description="one entry per question, in order")


class VqaPipeline(Pipeline):
    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        super().__init__(version, settings, pool)
        config = version.config
        if config.text is None or config.image_encoder is None:
            raise ValueError("a vqa model needs a text input and an image_encoder")
        if not isinstance(config.postprocess, SoftmaxTopK):
            raise ValueError("a vqa model needs softmax_topk postprocess")
        self.post = config.postprocess
        self.text = config.text
        self.image = config.image_encoder
        self.vocab = Vocabulary.load(version.folder.parent / self.text.vocabulary)
        self.labels = self.side_file_lines(self.post.labels)
        answers = next(o.shape[-1] for o in config.outputs if o.name == self.post.output)
        if answers > 0 and answers != len(self.labels):
            raise ValueError(f"{self.post.labels} has {len(self.labels)} answers for {answers}")

    def dependencies(self) -> dict[str, str]:
        return {"encoder": self.image.model}

    def bind(self, models: Mapping[str, ModelVersion]) -> None:
        """The encoder must carry the image preprocessing and produce the vector we take."""
        encoder = models["encoder"]
        if encoder.config.preprocess is None:
            raise ValueError(f"image encoder {encoder.name!r} has no preprocess")
        if self.image.output not in {o.name for o in encoder.config.outputs}:
            raise ValueError(f"image encoder {encoder.name!r} has no output {self.image.output!r}")
        self.encoder = encoder
        self.preprocessor = ImagePreprocessor(
            encoder.config.preprocess, max_pixels=self.settings.max_image_pixels
        )

    def option_defaults(self) -> dict[str, Any]:
        return {**super().option_defaults(), "top_k": self.post.default_top_k}

    def encode(self, questions: list[str]) -> list[EncodedText]:
        """Token ids per question; raises 400 for an empty or overlong one, before any work."""
        return [encode(q, self.vocab, self.text.max_length, what="question") for q in questions]

    async def answer(
        self, image: bytes, questions: list[str], *, k: int, deadline: Deadline
    ) -> list[QuestionAnswers]:
        texts = self.encode(questions)
        _, (encoded,) = await infer_prepared(
            self.encoder,
            self.pool,
            self.preprocessor,
            [image],
            self.preprocessor.config.input,
            deadline,
        )
        vector = encoded[self.image.output]
        rows = []
        for t in texts:
            row = {self.image.input: vector, self.text.input: t.ids}
            if self.text.lengths_input is not None:
                row[self.text.lengths_input] = np.asarray(t.length, dtype=np.int64)
            rows.append(row)
        outputs = await self.version.infer(rows, timeout_s=deadline.remaining_s())
        results = []
        for question, t, out in zip(questions, texts, outputs, strict=True):
            scores = out[self.post.output]
            probs = softmax(scores) if self.post.apply_softmax else scores
            answers = [Answer(**p.__dict__) for p in top_k(probs, k, self.labels)]
            results.append(
                QuestionAnswers(question=question, answers=answers, unknown_words=t.unknown)
            )
        return results


class Vqa(Task[VqaPipeline, VqaOptions, VqaResponse]):
    """One image and one or more questions in, ranked answers out.

    Questions come as ``question`` fields (repeat the field for several) in multipart or the
    query string, or as ``question``/``questions`` in a JSON body next to ``image`` (base64).
    """

    path = "/v1/vqa"
    summary = "Answer questions about an image (top-k answers with probabilities)"
    model_task = "vqa"
    options = VqaOptions
    response = VqaResponse
    images = (1, 1)
    image_count_code = "one_image_only"
    extra_body_fields: ClassVar[dict[str, dict[str, Any]]] = {
        "question": {"type": "array", "items": {"type": "string"}, "description": "a question"},
        "questions": {"type": "array", "items": {"type": "string"}},
    }

    async def run(self, pipeline: VqaPipeline, request: TaskRequest[VqaOptions]) -> VqaResponse:
        opts = request.options
        questions = opts.all_questions()
        if not questions:
            raise BadRequest("no question in the request", code="missing_question")
        if len(questions) > MAX_QUESTIONS:
            raise PayloadTooLarge(
                f"{len(questions)} questions in one request; the limit is {MAX_QUESTIONS}",
                code="too_many_questions",
            )
        assert opts.top_k is not None  # resolved from the model's config
        results = await pipeline.answer(
            request.images[0], questions, k=opts.top_k, deadline=request.deadline
        )
        return VqaResponse(
            model=pipeline.version.name, version=pipeline.version.version, results=results
        )
