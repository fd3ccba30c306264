"""Image embeddings: the feature vector a model declares (``embedding.output``), L2-normalised.

Any model with ``preprocess`` and an ``embedding`` section embeds images (for the ImageNet
classifier: its pooled penultimate features, the off-the-shelf descriptor of Razavian et al.,
2014). Unit length makes cosine similarity a dot product, which is what search indexes want.
The rows go through the model's batcher like every other call, so embedding and classifying
requests share batches.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import TYPE_CHECKING

import numpy as np

from serving.imaging.preprocess import ImagePreprocessor
from serving.settings import Settings
from serving.tasks.base import Deadline, prepare_all

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion


def l2_normalise(vectors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length (float32); an all-zero row stays zero instead of NaN."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, eps)


class ImageEmbedder:
    """Embeds images with one model version that declares an embedding output."""

    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        config = version.config
        if config.preprocess is None or config.embedding is None:
            raise ValueError(f"model {config.name!r} declares no image embedding")
        self.version = version
        self.pool = pool
        self.output = config.embedding.output
        self.preprocessor = ImagePreprocessor(
            config.preprocess, max_pixels=settings.max_image_pixels
        )
        self.dimension = next(o.shape[-1] for o in config.outputs if o.name == self.output)

    async def __call__(self, images: list[bytes], *, deadline: Deadline) -> np.ndarray:
        """``[len(images), D]`` unit-length float32 embeddings, in request order."""
        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prepared = await prepare_all(self.pool, self.preprocessor, images)
        rows = [{self.preprocessor.config.input: p.tensor} for p in prepared]
        outputs = await self.version.infer(rows, timeout_s=deadline.remaining_s())
        return l2_normalise(np.stack([out[self.output] for out in outputs]))
