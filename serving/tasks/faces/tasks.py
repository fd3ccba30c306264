"""``/v1/faces/*``: detect, embed, verify (1:1), identify (1:N) and the enrolled gallery.

Where one face per image is needed (verify, enrol) the rule is: the largest face (by box area)
is used, and its box is returned so the caller can see which.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, Field

from serving.errors import BadRequest
from serving.tasks.contract import ModelResponse, Task, TaskOptions, TaskRequest
from serving.tasks.faces.gallery import lookup_name
from serving.tasks.faces.geometry import largest
from serving.tasks.faces.pipelines import (
    FaceDetectionPipeline,
    FaceEmbeddingPipeline,
    ImageFaces,
)
from serving.vectors.names import ALLOWED, normalise_name


class Face(BaseModel):
    box: list[float] = Field(description="x1, y1, x2, y2 in original image pixels")
    score: float
    landmarks: list[list[float]] = Field(
        description="[x, y] of left eye, right eye, nose, mouth left, mouth right"
    )


class ImageFacesOut(BaseModel):
    faces: list[Face]


class EmbeddedFace(Face):
    embedding: list[float] = Field(description="unit vector; cosine similarity = dot product")


class ImageEmbeddings(BaseModel):
    faces: list[EmbeddedFace]


class GalleryMatch(BaseModel):
    identity: str
    similarity: float


class IdentifiedFace(Face):
    identity: str = Field(description="best match at or above the threshold, else 'unknown'")
    similarity: float | None = Field(description="of the best match; null if the gallery is empty")
    matches: list[GalleryMatch] = Field(description="top_k gallery matches, best first")


class ImageIdentities(BaseModel):
    faces: list[IdentifiedFace]


class FaceDetectResponse(ModelResponse):
    results: list[ImageFacesOut] = Field(description="one entry per image, in order")


class FaceEmbedResponse(ModelResponse):
    results: list[ImageEmbeddings] = Field(description="one entry per image, in order")


class VerifyResponse(ModelResponse):
    similarity: float = Field(description="cosine similarity of the two largest faces")
    threshold: float
    same_person: bool
    faces: list[Face] = Field(description="the face used from each image")
    faces_found: list[int] = Field(description="faces found in each image")


class IdentifyResponse(ModelResponse):
    threshold: float
    results: list[ImageIdentities] = Field(description="one entry per image, in order")


class EnrolResponse(BaseModel):
    model: str
    identity: str
    added: int = Field(description="photos added by this request")
    photos: int = Field(description="photos enrolled for this identity in all")
    faces: list[Face] = Field(description="the face used from each photo")


class IdentityCount(BaseModel):
    identity: str
    photos: int


class GalleryResponse(BaseModel):
    model: str
    identities: list[IdentityCount]


class ForgetResponse(BaseModel):
    model: str
    identity: str
    removed: int = Field(description="photos removed")


class EmbedOptions(TaskOptions):
    faces: Literal["all", "largest"] = Field(default="all", description="which faces to embed")


class VerifyOptions(TaskOptions):
    threshold: float | None = Field(
        default=None, ge=-1, le=1, description="same-person similarity; the model's if unset"
    )


class IdentifyOptions(VerifyOptions):
    top_k: int = Field(default=1, ge=1, le=100, description="gallery matches per face")


class IdentityOptions(TaskOptions):
    identity: str = Field(description=f"the enrolled person's name: {ALLOWED}")


def _face(found: ImageFaces, k: int) -> Face:
    return Face(
        box=[round(float(v), 2) for v in found.boxes[k]],
        score=round(float(found.faces.scores[k]), 5),
        landmarks=[[round(float(x), 2), round(float(y), 2)] for x, y in found.landmarks[k]],
    )


def _largest_each(found: list[ImageFaces]) -> list[int]:
    missing = [i for i, f in enumerate(found) if len(f.faces) == 0]
    if missing:
        raise BadRequest(f"no face found in image(s) {missing} (0-based)", code="no_face")
    return [largest(f.faces.boxes) for f in found]


class _FaceTask:
    tags: ClassVar[tuple[str, ...]] = ("faces",)


class FaceDetect(_FaceTask, Task[FaceDetectionPipeline, TaskOptions, FaceDetectResponse]):
    """MTCNN's cascade through three batched models."""

    path = "/v1/faces/detect"
    summary = "Find faces: boxes, scores and five landmarks per face"
    model_task = "face_detection"
    options = TaskOptions
    response = FaceDetectResponse

    async def run(
        self, pipeline: FaceDetectionPipeline, request: TaskRequest[TaskOptions]
    ) -> FaceDetectResponse:
        found = await pipeline.detect(request.images, request.deadline)
        return FaceDetectResponse(
            model=pipeline.version.name,
            version=pipeline.version.version,
            results=[
                ImageFacesOut(faces=[_face(f, k) for k in range(len(f.faces))]) for f in found
            ],
        )


class FaceEmbed(_FaceTask, Task[FaceEmbeddingPipeline, EmbedOptions, FaceEmbedResponse]):
    """Faces are found by the embedder's detector, aligned, then embedded in one batch."""

    path = "/v1/faces/embed"
    summary = "L2-normalised embeddings of the faces found (all, or the largest)"
    model_task = "face_embedding"
    options = EmbedOptions
    response = FaceEmbedResponse

    async def run(
        self, pipeline: FaceEmbeddingPipeline, request: TaskRequest[EmbedOptions]
    ) -> FaceEmbedResponse:
        found = await pipeline.find_faces(request.images, request.deadline)
        picks = []
        for i, f in enumerate(found):
            if len(f.faces) == 0:
                continue
            everyone = range(len(f.faces))
            chosen = [largest(f.faces.boxes)] if request.options.faces == "largest" else everyone
            picks += [(i, k) for k in chosen]
        vectors = await pipeline.embed([(found[i], k) for i, k in picks], request.deadline)
        results = [ImageEmbeddings(faces=[]) for _ in found]
        for (i, k), vector in zip(picks, vectors, strict=True):
            face = _face(found[i], k)
            results[i].faces.append(EmbeddedFace(**face.__dict__, embedding=vector.tolist()))
        return FaceEmbedResponse(
            model=pipeline.version.name, version=pipeline.version.version, results=results
        )


class FaceVerify(_FaceTask, Task[FaceEmbeddingPipeline, VerifyOptions, VerifyResponse]):
    """Compares the largest face of each of two images."""

    path = "/v1/faces/verify"
    summary = "Are the largest faces of two images the same person?"
    model_task = "face_embedding"
    options = VerifyOptions
    response = VerifyResponse
    images = (2, 2)

    async def run(
        self, pipeline: FaceEmbeddingPipeline, request: TaskRequest[VerifyOptions]
    ) -> VerifyResponse:
        found = await pipeline.find_faces(request.images, request.deadline)
        picks = _largest_each(found)
        a, b = await pipeline.embed(list(zip(found, picks, strict=True)), request.deadline)
        threshold = request.options.threshold
        assert threshold is not None  # resolved from the model's config
        similarity = float(np.dot(a, b))
        return VerifyResponse(
            model=pipeline.version.name,
            version=pipeline.version.version,
            similarity=round(similarity, 5),
            threshold=threshold,
            same_person=similarity >= threshold,
            faces=[_face(f, k) for f, k in zip(found, picks, strict=True)],
            faces_found=[len(f.faces) for f in found],
        )


class FaceIdentify(_FaceTask, Task[FaceEmbeddingPipeline, IdentifyOptions, IdentifyResponse]):
    """Every face found is searched against the embedder's enrolled gallery."""

    path = "/v1/faces/identify"
    summary = "Search every face found against the enrolled gallery (1:N)"
    model_task = "face_embedding"
    options = IdentifyOptions
    response = IdentifyResponse

    async def run(
        self, pipeline: FaceEmbeddingPipeline, request: TaskRequest[IdentifyOptions]
    ) -> IdentifyResponse:
        opts = request.options
        assert opts.threshold is not None  # resolved from the model's config
        found = await pipeline.find_faces(request.images, request.deadline)
        picks = [(f, k) for f in found for k in range(len(f.faces))]
        vectors = await pipeline.embed(picks, request.deadline)
        matches = pipeline.search(vectors, opts.top_k)
        results = [ImageIdentities(faces=[]) for _ in found]
        owner = [i for i, f in enumerate(found) for _ in range(len(f.faces))]
        for i, (f, k), best in zip(owner, picks, matches, strict=True):
            known = bool(best) and best[0].score >= opts.threshold
            results[i].faces.append(
                IdentifiedFace(
                    **_face(f, k).__dict__,
                    identity=best[0].identity if known else "unknown",
                    similarity=round(best[0].score, 5) if best else None,
                    matches=[
                        GalleryMatch(identity=m.identity, similarity=round(m.score, 5))
                        for m in best
                    ],
                )
            )
        return IdentifyResponse(
            model=pipeline.version.name,
            version=pipeline.version.version,
            threshold=opts.threshold,
            results=results,
        )


class FaceEnrol(_FaceTask, Task[FaceEmbeddingPipeline, IdentityOptions, EnrolResponse]):
    """The largest face of each photo is embedded and stored under the identity."""

    path = "/v1/faces/gallery/{identity}"
    summary = "Enrol an identity from one or more photos (the largest face of each)"
    model_task = "face_embedding"
    options = IdentityOptions
    response = EnrolResponse

    async def run(
        self, pipeline: FaceEmbeddingPipeline, request: TaskRequest[IdentityOptions]
    ) -> EnrolResponse:
        identity = normalise_name(request.options.identity)  # 400 before any face work
        found = await pipeline.find_faces(request.images, request.deadline)
        picks = _largest_each(found)
        vectors = await pipeline.embed(list(zip(found, picks, strict=True)), request.deadline)
        total = await pipeline.enrol(identity, vectors)
        return EnrolResponse(
            model=pipeline.version.name,
            identity=identity,
            added=len(vectors),
            photos=total,
            faces=[_face(f, k) for f, k in zip(found, picks, strict=True)],
        )


class GalleryList(_FaceTask, Task[FaceEmbeddingPipeline, TaskOptions, GalleryResponse]):
    """One gallery per embedding model: embeddings of different models are not comparable."""

    path = "/v1/faces/gallery"
    method = "GET"
    summary = "Enrolled identities and their photo counts"
    model_task = "face_embedding"
    options = TaskOptions
    response = GalleryResponse
    images = (0, 0)

    async def run(
        self, pipeline: FaceEmbeddingPipeline, request: TaskRequest[TaskOptions]
    ) -> GalleryResponse:
        return GalleryResponse(
            model=pipeline.version.name,
            identities=[
                IdentityCount(identity=name, photos=n) for name, n in pipeline.identities().items()
            ],
        )


class GalleryForget(_FaceTask, Task[FaceEmbeddingPipeline, IdentityOptions, ForgetResponse]):
    """Removes every photo enrolled under the identity."""

    path = "/v1/faces/gallery/{identity}"
    method = "DELETE"
    summary = "Forget an enrolled identity"
    model_task = "face_embedding"
    options = IdentityOptions
    response = ForgetResponse
    images = (0, 0)

    async def run(
        self, pipeline: FaceEmbeddingPipeline, request: TaskRequest[IdentityOptions]
    ) -> ForgetResponse:
        identity = lookup_name(request.options.identity)
        removed = await pipeline.forget(identity)
        return ForgetResponse(model=pipeline.version.name, identity=identity, removed=removed)
