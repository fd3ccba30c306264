"""Image classification: preprocess -> batched model -> softmax/top-k with labels."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from serving.core.config import SoftmaxTopK
from serving.core.deadline import Deadline
from serving.imaging.scores import softmax, top_k
from serving.settings import Settings
from serving.tasks.contract import ModelResponse, Task, TaskOptions, TaskRequest
from serving.tasks.image_pipeline import ImagePipeline

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion


class ClassifyOptions(TaskOptions):
    top_k: int | None = Field(
        default=None, ge=1, le=1000, description="labels per image; the model's default_top_k"
    )


class Label(BaseModel):
    label: str
    class_id: int
    probability: float


class ImageClassification(BaseModel):
    predictions: list[Label] = Field(description="best first")


class ClassifyResponse(ModelResponse):
    results: list[ImageClassification] = Field(description="one entry per image, in order")


class ClassificationPipeline(ImagePipeline):
    needs, needs_kind = SoftmaxTopK, "softmax_topk"

    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        super().__init__(version, settings, pool)
        self.labels = self.labels_for(self.post.output)

    def option_defaults(self) -> dict[str, Any]:
        return {**super().option_defaults(), "top_k": self.post.default_top_k}

    async def classify(
        self, images: list[bytes], *, k: int, deadline: Deadline
    ) -> list[ImageClassification]:
        _, outputs = await self.infer_images(images, deadline)
        results = []
        for out in outputs:
            scores = out[self.post.output]
            probs = softmax(scores) if self.post.apply_softmax else scores
            labels = [Label(**p.__dict__) for p in top_k(probs, k, self.labels)]
            results.append(ImageClassification(predictions=labels))
        return results


class Classify(Task[ClassificationPipeline, ClassifyOptions, ClassifyResponse]):
    """Top-k labels with probabilities for each image."""

    path = "/v1/classify"
    summary = "Classify images (top-k labels with probabilities)"
    model_task = "classification"
    options = ClassifyOptions
    response = ClassifyResponse

    async def run(
        self, pipeline: ClassificationPipeline, request: TaskRequest[ClassifyOptions]
    ) -> ClassifyResponse:
        assert request.options.top_k is not None  # resolved from the model's config
        results = await pipeline.classify(
            request.images, k=request.options.top_k, deadline=request.deadline
        )
        return ClassifyResponse(
            model=pipeline.version.name, version=pipeline.version.version, results=results
        )
