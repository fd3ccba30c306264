"""Face pipelines: MTCNN detection (three batched networks) and aligned FaceNet embeddings.

The detector's config names its R-Net and O-Net stage models (``extra.stages``); the embedder's
names its detector, alignment template and calibrated threshold. Both read ``extra`` through the
pydantic models here, so a bad value fails the model's load with the field named.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from serving.imaging.decode import decode_image
from serving.settings import Settings
from serving.tasks.base import Deadline, prepare_all
from serving.tasks.faces.align import align
from serving.tasks.faces.cascade import CascadeParams, Faces, detect_faces
from serving.tasks.faces.geometry import fit_within

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion

T = TypeVar("T")


class _Extra(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectorExtra(_Extra):
    stages: dict[str, str] = Field(description="model names of the 'rnet' and 'onet' stages")
    min_face: float = Field(default=20.0, gt=0)
    factor: float = Field(default=0.709, gt=0, lt=1)
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    max_side: int = Field(default=1024, ge=48, description="detection works at this size")


class EmbedderExtra(_Extra):
    detector: str
    input_size: int = Field(gt=0)
    template: list[tuple[float, float]] = Field(min_length=5, max_length=5)
    threshold: float = Field(ge=-1, le=1, description="cosine similarity for 'same person'")


@dataclass(frozen=True)
class ImageFaces:
    """One image's faces, in original pixels, and the working-size pixels for alignment."""

    pixels: np.ndarray  # the image at working size
    to_original: float  # original pixels per working pixel
    faces: Faces  # in working pixels

    @property
    def boxes(self) -> np.ndarray:
        return self.faces.boxes * self.to_original

    @property
    def landmarks(self) -> np.ndarray:
        return self.faces.landmarks * self.to_original


class FaceDetectionPipeline:
    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        self.version = version
        self.pool = pool
        self.max_pixels = settings.max_image_pixels
        self.extra = DetectorExtra.model_validate(version.config.extra)
        if set(self.extra.stages) != {"rnet", "onet"}:
            raise ValueError("extra.stages must name exactly 'rnet' and 'onet'")
        e = self.extra
        self.params = CascadeParams(min_face=e.min_face, factor=e.factor, thresholds=e.thresholds)

    def _load(self, data: bytes) -> tuple[np.ndarray, float]:
        side = self.extra.max_side

        def needed(w: int, h: int) -> tuple[int, int]:
            s = min(1.0, side / max(w, h))
            return max(1, round(w * s)), max(1, round(h * s))

        decoded = decode_image(data, max_pixels=self.max_pixels, needed_size=needed)
        pixels, _ = fit_within(decoded.pixels, side)
        return pixels, decoded.original_size[0] / pixels.shape[1]

    async def __call__(
        self, images: Sequence[bytes], stages: dict[str, ModelVersion], deadline: Deadline
    ) -> list[ImageFaces]:
        loaded = await prepare_all(self.pool, self._load, images)
        loop = asyncio.get_running_loop()

        async def infer(stage: str, rows: list[dict[str, np.ndarray]]) -> list:
            model = self.version if stage == "pnet" else stages[stage]
            return await model.infer(rows, timeout_s=deadline.remaining_s())

        async def offload(fn: Callable[[], T]) -> T:
            return await loop.run_in_executor(self.pool, fn)

        found = await detect_faces([p for p, _ in loaded], infer, self.params, offload)
        return [ImageFaces(p, s, f) for (p, s), f in zip(loaded, found, strict=True)]


class FaceEmbeddingPipeline:
    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        self.version = version
        self.pool = pool
        self.extra = EmbedderExtra.model_validate(version.config.extra)
        self.template = np.asarray(self.extra.template, dtype=np.float32)
        self.input = version.config.inputs[0].name
        self.output = version.config.outputs[0].name

    async def __call__(
        self, faces: Sequence[tuple[np.ndarray, np.ndarray]], deadline: Deadline
    ) -> np.ndarray:
        """``[K, D]`` unit embeddings of ``(pixels, landmarks)`` faces (working pixels)."""
        if not faces:
            return np.zeros((0, self.version.config.outputs[0].shape[-1]), dtype=np.float32)
        size = self.extra.input_size

        def crops() -> list[np.ndarray]:
            return [
                align(px, lm, self.template, size).transpose(2, 0, 1).astype(np.float32)
                for px, lm in faces
            ]

        rows = await asyncio.get_running_loop().run_in_executor(self.pool, crops)
        outs = await self.version.infer(
            [{self.input: r} for r in rows], timeout_s=deadline.remaining_s()
        )
        return np.stack([o[self.output] for o in outs]).astype(np.float32)
