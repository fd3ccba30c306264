"""Image classification: preprocess -> batched model -> softmax/top-k with labels."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import TYPE_CHECKING

from serving.core.config import SoftmaxTopK
from serving.imaging.preprocess import ImagePreprocessor
from serving.imaging.scores import Prediction, softmax, top_k
from serving.settings import Settings
from serving.tasks.base import Deadline, prepare_all, read_lines

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion


class ClassificationPipeline:
    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        config = version.config
        if config.preprocess is None or not isinstance(config.postprocess, SoftmaxTopK):
            raise ValueError("a classification model needs preprocess and softmax_topk postprocess")
        self.version = version
        self.pool = pool
        self.post = config.postprocess
        self.preprocessor = ImagePreprocessor(
            config.preprocess, max_pixels=settings.max_image_pixels
        )
        self.labels = read_lines(version.folder.parent / self.post.labels)
        classes = next(o.shape[-1] for o in config.outputs if o.name == self.post.output)
        if classes > 0 and classes != len(self.labels):
            raise ValueError(
                f"{self.post.labels} has {len(self.labels)} labels for {classes} classes"
            )

    async def __call__(
        self, images: list[bytes], *, k: int, deadline: Deadline
    ) -> list[list[Prediction]]:
        prepared = await prepare_all(self.pool, self.preprocessor, images)
        rows = [{self.preprocessor.config.input: p.tensor} for p in prepared]
        outputs = await self.version.infer(rows, timeout_s=deadline.remaining_s())
        results = []
        for out in outputs:
            scores = out[self.post.output]
            probs = softmax(scores) if self.post.apply_softmax else scores
            results.append(top_k(probs, k, self.labels))
        return results
