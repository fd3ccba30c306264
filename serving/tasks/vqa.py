"""Visual question answering: one image, several questions -> answers with probabilities.

Each question is one batcher row (image tensor, token ids, length), so questions about the same
image, and those of concurrent requests, share ONNX Runtime calls. The image is decoded and
preprocessed once per request however many questions it carries.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from serving.core.config import SoftmaxTopK
from serving.imaging.preprocess import ImagePreprocessor
from serving.imaging.scores import Prediction, softmax, top_k
from serving.settings import Settings
from serving.tasks.base import Deadline, prepare_all, read_lines
from serving.text import EncodedText, Vocabulary, encode

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion


@dataclass(frozen=True)
class Answer:
    question: str
    answers: list[Prediction]
    unknown_words: int  # question words the model never saw in training


class VqaPipeline:
    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        config = version.config
        if (
            config.preprocess is None
            or config.text is None
            or not isinstance(config.postprocess, SoftmaxTopK)
        ):
            raise ValueError("a vqa model needs preprocess, text and softmax_topk postprocess")
        self.version = version
        self.pool = pool
        self.post = config.postprocess
        self.text = config.text
        folder = version.folder.parent
        self.preprocessor = ImagePreprocessor(
            config.preprocess, max_pixels=settings.max_image_pixels
        )
        self.vocab = Vocabulary.load(folder / self.text.vocabulary)
        self.labels = read_lines(folder / self.post.labels)
        classes = next(o.shape[-1] for o in config.outputs if o.name == self.post.output)
        if classes > 0 and classes != len(self.labels):
            raise ValueError(
                f"{self.post.labels} has {len(self.labels)} answers for {classes} classes"
            )

    def encode(self, questions: list[str]) -> list[EncodedText]:
        """Token ids per question; raises 400 for an empty or overlong one, before any work."""
        return [encode(q, self.vocab, self.text.max_length, what="question") for q in questions]

    async def __call__(
        self, image: bytes, questions: list[str], *, k: int, deadline: Deadline
    ) -> list[Answer]:
        texts = self.encode(questions)
        (prepared,) = await prepare_all(self.pool, self.preprocessor, [image])
        rows = []
        for t in texts:
            row = {self.preprocessor.config.input: prepared.tensor, self.text.input: t.ids}
            if self.text.lengths_input is not None:
                row[self.text.lengths_input] = np.asarray(t.length, dtype=np.int64)
            rows.append(row)
        outputs = await self.version.infer(rows, timeout_s=deadline.remaining_s())
        results = []
        for question, t, out in zip(questions, texts, outputs, strict=True):
            scores = out[self.post.output]
            probs = softmax(scores) if self.post.apply_softmax else scores
            results.append(Answer(question, top_k(probs, k, self.labels), t.unknown))
        return results
