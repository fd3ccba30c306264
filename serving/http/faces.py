"""``/v1/faces/*``: detect, embed, verify (1:1) and identify (1:N) against an enrolled gallery.

Detection is MTCNN's cascade through three batched models; embeddings come from the aligned
faces. Where one face per image is needed (verify, enrol) the rule is: the largest face (by box
area) is used, and its box is returned so the caller can see which.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import numpy as np
from fastapi import APIRouter, Request
from pydantic import Field

from serving.core.repository import ModelVersion
from serving.errors import BadRequest
from serving.http.docs import IMAGE_REQUEST_BODY
from serving.http.inputs import TaskOptions, parse_options, read_image_request
from serving.http.responses import ORJSONResponse
from serving.tasks.base import Deadline
from serving.tasks.faces.gallery import Gallery
from serving.tasks.faces.geometry import largest
from serving.tasks.faces.pipelines import ImageFaces

router = APIRouter(tags=["faces"])


class DetectOptions(TaskOptions):
    pass


class EmbedOptions(TaskOptions):
    faces: Literal["all", "largest"] = Field(default="all", description="which faces to embed")


class VerifyOptions(TaskOptions):
    threshold: float | None = Field(default=None, ge=-1, le=1, description="override")


class IdentifyOptions(TaskOptions):
    top_k: int = Field(default=1, ge=1, le=100)
    threshold: float | None = Field(default=None, ge=-1, le=1, description="override")


def _face(found: ImageFaces, k: int) -> dict:
    return {
        "box": [round(float(v), 2) for v in found.boxes[k]],
        "score": round(float(found.faces.scores[k]), 5),
        "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in found.landmarks[k]],
    }


async def _detect(
    request: Request, images: list[bytes], detector: ModelVersion, deadline: Deadline
) -> list[ImageFaces]:
    repo = request.app.state.repository
    pipeline = detector.pipeline
    stages = {stage: repo.get(name) for stage, name in pipeline.extra.stages.items()}
    return await pipeline(images, stages, deadline)


async def _embedder_and_faces(
    request: Request, opts: TaskOptions, images: list[bytes], deadline: Deadline
) -> tuple[ModelVersion, list[ImageFaces]]:
    repo = request.app.state.repository
    embedder = repo.for_task("face_embedding", opts.model, opts.version)
    request.state.model = embedder.name
    detector = repo.for_task("face_detection", embedder.pipeline.extra.detector, None)
    return embedder, await _detect(request, images, detector, deadline)


def _largest_each(found: list[ImageFaces]) -> list[int]:
    missing = [i for i, f in enumerate(found) if len(f.faces) == 0]
    if missing:
        raise BadRequest(f"no face found in image(s) {missing} (0-based)", code="no_face")
    return [largest(f.faces.boxes) for f in found]


async def _embed(
    embedder: ModelVersion, picks: list[tuple[ImageFaces, int]], deadline: Deadline
) -> np.ndarray:
    faces = [(f.pixels, f.faces.landmarks[k]) for f, k in picks]
    return await embedder.pipeline(faces, deadline)


def _deadline(request: Request, opts: TaskOptions) -> Deadline:
    return Deadline.after_ms(opts.timeout_ms or request.app.state.settings.default_timeout_ms)


def _gallery(request: Request, embedder: ModelVersion) -> Gallery:
    state = request.app.state
    if not hasattr(state, "face_galleries"):  # one Gallery (and lock) per model per app
        state.face_galleries = {}
    galleries: dict[str, Gallery] = state.face_galleries
    if embedder.name not in galleries:
        path = state.settings.face_gallery_dir / f"{embedder.name}.npz"
        galleries[embedder.name] = Gallery(path, embedder.config.outputs[0].shape[-1])
    return galleries[embedder.name]


@router.post(
    "/v1/faces/detect",
    openapi_extra=IMAGE_REQUEST_BODY,
    summary="Find faces: boxes, scores and five landmarks per face",
)
async def detect(request: Request) -> ORJSONResponse:
    state = request.app.state
    req = await read_image_request(request, state.settings)
    opts = parse_options(DetectOptions, req.options)
    detector = state.repository.for_task("face_detection", opts.model, opts.version)
    request.state.model = detector.name
    found = await _detect(request, req.images, detector, _deadline(request, opts))
    return ORJSONResponse(
        {
            "model": detector.name,
            "version": detector.version,
            "results": [{"faces": [_face(f, k) for k in range(len(f.faces))]} for f in found],
        }
    )


@router.post(
    "/v1/faces/embed",
    openapi_extra=IMAGE_REQUEST_BODY,
    summary="L2-normalised embeddings of the faces found (all, or the largest)",
)
async def embed(request: Request) -> ORJSONResponse:
    req = await read_image_request(request, request.app.state.settings)
    opts = parse_options(EmbedOptions, req.options)
    deadline = _deadline(request, opts)
    embedder, found = await _embedder_and_faces(request, opts, req.images, deadline)
    picks = []
    for i, f in enumerate(found):
        if len(f.faces) == 0:
            continue
        chosen = [largest(f.faces.boxes)] if opts.faces == "largest" else range(len(f.faces))
        picks += [(i, k) for k in chosen]
    vectors = await _embed(embedder, [(found[i], k) for i, k in picks], deadline)
    results: list[dict] = [{"faces": []} for _ in found]
    for (i, k), vector in zip(picks, vectors, strict=True):
        results[i]["faces"].append({**_face(found[i], k), "embedding": vector.tolist()})
    return ORJSONResponse({"model": embedder.name, "version": embedder.version, "results": results})


@router.post(
    "/v1/faces/verify",
    openapi_extra=IMAGE_REQUEST_BODY,
    summary="Are the largest faces of two images the same person?",
)
async def verify(request: Request) -> ORJSONResponse:
    req = await read_image_request(request, request.app.state.settings)
    if len(req.images) != 2:
        raise BadRequest(
            f"verify takes exactly 2 images, got {len(req.images)}", code="wrong_image_count"
        )
    opts = parse_options(VerifyOptions, req.options)
    deadline = _deadline(request, opts)
    embedder, found = await _embedder_and_faces(request, opts, req.images, deadline)
    picks = _largest_each(found)
    a, b = await _embed(embedder, list(zip(found, picks, strict=True)), deadline)
    threshold = embedder.pipeline.extra.threshold if opts.threshold is None else opts.threshold
    similarity = float(np.dot(a, b))
    return ORJSONResponse(
        {
            "model": embedder.name,
            "version": embedder.version,
            "similarity": round(similarity, 5),
            "threshold": threshold,
            "same_person": similarity >= threshold,
            "faces": [_face(f, k) for f, k in zip(found, picks, strict=True)],
            "faces_found": [len(f.faces) for f in found],
        }
    )


@router.post(
    "/v1/faces/identify",
    openapi_extra=IMAGE_REQUEST_BODY,
    summary="Search every face found against the enrolled gallery (1:N)",
)
async def identify(request: Request) -> ORJSONResponse:
    req = await read_image_request(request, request.app.state.settings)
    opts = parse_options(IdentifyOptions, req.options)
    deadline = _deadline(request, opts)
    embedder, found = await _embedder_and_faces(request, opts, req.images, deadline)
    picks = [(f, k) for f in found for k in range(len(f.faces))]
    vectors = await _embed(embedder, picks, deadline)
    threshold = embedder.pipeline.extra.threshold if opts.threshold is None else opts.threshold
    matches = _gallery(request, embedder).search(vectors, opts.top_k)
    results: list[dict] = [{"faces": []} for _ in found]
    owner = [i for i, f in enumerate(found) for _ in range(len(f.faces))]
    for i, (f, k), best in zip(owner, picks, matches, strict=True):
        known = bool(best) and best[0].score >= threshold
        results[i]["faces"].append(
            {
                **_face(f, k),
                "identity": best[0].identity if known else "unknown",
                "similarity": round(best[0].score, 5) if best else None,
                "matches": [
                    {"identity": m.identity, "similarity": round(m.score, 5)} for m in best
                ],
            }
        )
    return ORJSONResponse(
        {
            "model": embedder.name,
            "version": embedder.version,
            "threshold": threshold,
            "results": results,
        }
    )


@router.post(
    "/v1/faces/gallery/{identity}",
    openapi_extra=IMAGE_REQUEST_BODY,
    summary="Enrol an identity from one or more photos (the largest face of each)",
)
async def enrol(request: Request, identity: str) -> ORJSONResponse:
    req = await read_image_request(request, request.app.state.settings)
    opts = parse_options(TaskOptions, req.options)
    deadline = _deadline(request, opts)
    embedder, found = await _embedder_and_faces(request, opts, req.images, deadline)
    picks = _largest_each(found)
    vectors = await _embed(embedder, list(zip(found, picks, strict=True)), deadline)
    gallery = _gallery(request, embedder)
    async with gallery.lock:
        total = await asyncio.to_thread(gallery.add, identity, vectors)
    return ORJSONResponse(
        {
            "model": embedder.name,
            "identity": identity,
            "added": len(vectors),
            "photos": total,
            "faces": [_face(f, k) for f, k in zip(found, picks, strict=True)],
        }
    )


@router.get("/v1/faces/gallery", summary="Enrolled identities and their photo counts")
async def list_gallery(request: Request, model: str | None = None) -> ORJSONResponse:
    embedder = request.app.state.repository.for_task("face_embedding", model, None)
    gallery = _gallery(request, embedder)
    return ORJSONResponse(
        {
            "model": embedder.name,
            "identities": [
                {"identity": name, "photos": n} for name, n in gallery.identities().items()
            ],
        }
    )


@router.delete("/v1/faces/gallery/{identity}", summary="Forget an enrolled identity")
async def delete_identity(
    request: Request, identity: str, model: str | None = None
) -> ORJSONResponse:
    embedder = request.app.state.repository.for_task("face_embedding", model, None)
    gallery = _gallery(request, embedder)
    async with gallery.lock:
        removed = await asyncio.to_thread(gallery.remove, identity)
    return ORJSONResponse({"model": embedder.name, "identity": identity, "removed": removed})
