"""Image embeddings: the feature vector a model declares (``embedding.output``), L2-normalised.

Any classification model with an ``embedding`` section embeds images (for the ImageNet
classifier: its pooled penultimate features, the off-the-shelf descriptor of Razavian et al.,
2014). Unit length makes cosine similarity a dot product, which is what search indexes want.
The rows go through the model's batcher like every other call, so embedding and classifying
requests share batches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field

from serving.core.deadline import Deadline
from serving.errors import BadRequest
from serving.tasks.contract import ModelResponse, Task, TaskOptions, TaskRequest

if TYPE_CHECKING:
    from serving.tasks.classify import ClassificationPipeline
    from serving.tasks.image_pipeline import ImagePipeline


def l2_normalise(vectors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length (float32); an all-zero row stays zero instead of NaN."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, eps)


class ImageEmbedder:
    """Embeds images with one model version's own preprocessing and batcher (its pipeline's),
    reading the output its config declares as the embedding."""

    def __init__(self, pipeline: ImagePipeline, output: str) -> None:
        self.pipeline = pipeline
        self.version = pipeline.version
        self.output = output
        outputs = pipeline.version.config.outputs
        self.dimension = next(o.shape[-1] for o in outputs if o.name == output)

    async def __call__(self, images: list[bytes], *, deadline: Deadline) -> np.ndarray:
        """``[len(images), D]`` unit-length float32 embeddings, in request order."""
        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        _, outputs = await self.pipeline.infer_images(images, deadline)
        return l2_normalise(np.stack([out[self.output] for out in outputs]))


class EmbedOptions(TaskOptions):
    pass


class ImageEmbedding(BaseModel):
    embedding: list[float] = Field(description="unit-length (L2) feature vector")


class EmbedResponse(ModelResponse):
    dimension: int
    results: list[ImageEmbedding] = Field(description="one entry per image, in order")


class Embed(Task["ClassificationPipeline", EmbedOptions, EmbedResponse]):
    """L2-normalised feature vectors of a classification model that declares an embedding
    output (cosine similarity = dot product)."""

    path = "/v1/embed"
    summary = "Embed images (unit-length feature vectors)"
    model_task = "classification"
    options = EmbedOptions
    response = EmbedResponse

    async def run(
        self, pipeline: ClassificationPipeline, request: TaskRequest[EmbedOptions]
    ) -> EmbedResponse:
        embedder = pipeline.embedder
        if embedder is None:
            raise BadRequest(
                f"model {pipeline.version.name!r} declares no embedding output",
                code="embedding_unsupported",
            )
        vectors = await embedder(request.images, deadline=request.deadline)
        return EmbedResponse(
            model=pipeline.version.name,
            version=pipeline.version.version,
            dimension=embedder.dimension,
            results=[ImageEmbedding(embedding=v.tolist()) for v in vectors],
        )
