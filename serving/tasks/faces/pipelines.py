"""Face pipelines: MTCNN detection (three batched networks) and aligned FaceNet embeddings.

The detector's config names its R-Net and O-Net stage models; the embedder's names its detector,
alignment template and calibrated threshold. All are typed config fields, and the stage and
detector models are bound when the models load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from serving.core.config import FaceCascade, FaceEmbedding
from serving.core.deadline import Deadline
from serving.imaging.decode import decode_image
from serving.imaging.prepared import prepare_all
from serving.settings import Settings
from serving.tasks.contract import Pipeline
from serving.tasks.faces.align import align
from serving.tasks.faces.cascade import CascadeParams, Faces, detect_faces
from serving.tasks.faces.gallery import Gallery, Match
from serving.tasks.faces.geometry import fit_within

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion

T = TypeVar("T")


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


class FaceDetectionPipeline(Pipeline):
    """P-Net is this model; R-Net and O-Net are bound stage models."""

    stages: dict[str, ModelVersion]

    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        super().__init__(version, settings, pool)
        if not isinstance(version.config.postprocess, FaceCascade):
            raise ValueError("a face_detection model needs face_cascade postprocess")
        self.post = version.config.postprocess
        p = self.post
        self.params = CascadeParams(min_face=p.min_face, factor=p.factor, thresholds=p.thresholds)

    def dependencies(self) -> dict[str, str]:
        return {"rnet": self.post.rnet_model, "onet": self.post.onet_model}

    def bind(self, models: Mapping[str, ModelVersion]) -> None:
        """The stages' crop sizes come from their configs' fixed square input shapes."""
        sizes = {}
        for stage, model in models.items():
            shape = model.config.inputs[0].shape
            if len(shape) != 4 or shape[2] != shape[3] or shape[2] <= 0:
                raise ValueError(f"{model.name!r} ({stage}) needs a fixed square input")
            sizes[f"{stage}_size"] = shape[2]
        self.params = replace(self.params, **sizes)
        self.stages = dict(models)

    def _load(self, data: bytes) -> tuple[np.ndarray, float]:
        side = self.post.max_side

        def needed(w: int, h: int) -> tuple[int, int]:
            s = min(1.0, side / max(w, h))
            return max(1, round(w * s)), max(1, round(h * s))

        decoded = decode_image(data, max_pixels=self.settings.max_image_pixels, needed_size=needed)
        pixels, _ = fit_within(decoded.pixels, side)
        return pixels, decoded.original_size[0] / pixels.shape[1]

    async def detect(self, images: Sequence[bytes], deadline: Deadline) -> list[ImageFaces]:
        """Images are decoded only inside the detector's decode window (as image tasks' rows
        are), so a burst of admitted uploads holds compressed bytes, not megapixel arrays."""
        async with self.version.decode_window.hold(len(images), deadline):
            return await self._detect(images, deadline)

    async def _detect(self, images: Sequence[bytes], deadline: Deadline) -> list[ImageFaces]:
        loaded = await prepare_all(self.pool, self._load, images)
        loop = asyncio.get_running_loop()

        async def infer(stage: str, rows: list[dict[str, np.ndarray]]) -> list:
            model = self.version if stage == "pnet" else self.stages[stage]
            return await model.infer(rows, timeout_s=deadline.remaining_s())

        async def offload(fn: Callable[[], T]) -> T:
            return await loop.run_in_executor(self.pool, fn)

        found = await detect_faces([p for p, _ in loaded], infer, self.params, offload)
        return [ImageFaces(p, s, f) for (p, s), f in zip(loaded, found, strict=True)]


class FaceEmbeddingPipeline(Pipeline):
    """Aligned crops of the bound detector's faces -> unit embeddings; owns the model's gallery."""

    detector: FaceDetectionPipeline

    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        super().__init__(version, settings, pool)
        if not isinstance(version.config.postprocess, FaceEmbedding):
            raise ValueError("a face_embedding model needs face_embedding postprocess")
        self.post = version.config.postprocess
        self.template = np.asarray(self.post.template, dtype=np.float32)
        self.input = version.config.inputs[0].name
        self.dim = next(o.shape[-1] for o in version.config.outputs if o.name == self.post.output)
        self.gallery = Gallery(settings.face_gallery_dir / f"{version.name}.npz", self.dim)

    def option_defaults(self) -> dict[str, Any]:
        return {**super().option_defaults(), "threshold": self.post.threshold}

    def dependencies(self) -> dict[str, str]:
        return {"detector": self.post.detector_model}

    def bind(self, models: Mapping[str, ModelVersion]) -> None:
        detector = models["detector"].pipeline
        if not isinstance(detector, FaceDetectionPipeline):
            raise ValueError(f"{self.post.detector_model!r} is not a face_detection model")
        self.detector = detector

    async def find_faces(self, images: Sequence[bytes], deadline: Deadline) -> list[ImageFaces]:
        return await self.detector.detect(images, deadline)

    async def embed(
        self, picks: Sequence[tuple[ImageFaces, int]], deadline: Deadline
    ) -> np.ndarray:
        """``[K, D]`` unit embeddings of the chosen faces (image, face index)."""
        if not picks:
            return np.zeros((0, self.dim), dtype=np.float32)
        size = self.post.input_size

        def crops() -> list[np.ndarray]:
            return [
                align(f.pixels, f.faces.landmarks[k], self.template, size)
                .transpose(2, 0, 1)
                .astype(np.float32)
                for f, k in picks
            ]

        rows = await asyncio.get_running_loop().run_in_executor(self.pool, crops)
        outs = await self.version.infer(
            [{self.input: r} for r in rows], timeout_s=deadline.remaining_s()
        )
        return np.stack([o[self.post.output] for o in outs]).astype(np.float32)

    async def enrol(self, identity: str, vectors: np.ndarray) -> int:
        async with self.gallery.lock:
            return await asyncio.to_thread(self.gallery.add, identity, vectors)

    async def forget(self, identity: str) -> int:
        async with self.gallery.lock:
            return await asyncio.to_thread(self.gallery.remove, identity)

    def search(self, vectors: np.ndarray, k: int) -> list[list[Match]]:
        return self.gallery.search(vectors, k)

    def identities(self) -> dict[str, int]:
        return self.gallery.identities()
