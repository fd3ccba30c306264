"""Typed results of the task endpoints, as the client returns them.

They mirror the server's JSON and allow extra fields, so a newer server (a new option, a CAM
overlay) never breaks an older client. Base64 PNGs have ``*_bytes`` helpers.
"""

from __future__ import annotations

import base64
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Result(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class Response(Result):
    model: str
    version: int | None = None
    request_id: str | None = Field(default=None, description="the server's X-Request-ID")


def _png(b64: str | None) -> bytes | None:
    return None if b64 is None else base64.b64decode(b64)


# -- classify and embed ---------------------------------------------------------------------------
class ClassActivation(Result):
    grid: list[list[float]] = Field(description="feature-map resolution, normalised to [0, 1]")
    box: list[float] = Field(description="x1, y1, x2, y2 of the evidence, original pixels")


class Label(Result):
    label: str
    class_id: int
    probability: float
    cam: ClassActivation | None = Field(default=None, description="with explain='cam'")


class Classification(Result):
    predictions: list[Label]
    explain_png: str | None = None

    @property
    def top(self) -> Label:
        return self.predictions[0]

    @property
    def explain_png_bytes(self) -> bytes | None:
        return _png(self.explain_png)


class ClassifyResponse(Response):
    results: list[Classification]


class Embedding(Result):
    embedding: list[float] = Field(description="unit length")


class EmbedResponse(Response):
    dimension: int
    results: list[Embedding]


# -- detect ---------------------------------------------------------------------------------------
class Detection(Result):
    label: str
    class_id: int
    score: float
    box: list[float] = Field(description="x1, y1, x2, y2 in original pixels")


class Detections(Result):
    width: int
    height: int
    detections: list[Detection]
    rendered_png: str | None = None

    @property
    def rendered_bytes(self) -> bytes | None:
        return _png(self.rendered_png)


class DetectResponse(Response):
    results: list[Detections]


# -- segment --------------------------------------------------------------------------------------
class ClassArea(Result):
    label: str
    class_id: int
    fraction: float


class Rle(Result):
    size: list[int]
    counts: str


class Segmentation(Result):
    width: int
    height: int
    classes: list[ClassArea]
    masks: dict[str, Rle] | None = None
    mask_png: str | None = None
    rendered_png: str | None = None

    @property
    def mask_bytes(self) -> bytes | None:
        return _png(self.mask_png)

    @property
    def rendered_bytes(self) -> bytes | None:
        return _png(self.rendered_png)


class SegmentResponse(Response):
    labels: list[str]
    results: list[Segmentation]


# -- caption and VQA ------------------------------------------------------------------------------
class Caption(Result):
    text: str
    log_probability: float
    tokens: int


class Captions(Result):
    captions: list[Caption]


class CaptionResponse(Response):
    results: list[Captions]


class QuestionAnswers(Result):
    question: str
    answers: list[Label]
    unknown_words: int


class VqaResponse(Response):
    results: list[QuestionAnswers]


# -- faces ----------------------------------------------------------------------------------------
class Face(Result):
    box: list[float]
    score: float
    landmarks: list[list[float]] = Field(description="eyes, nose, mouth corners: [x, y] each")


class ImageFaces(Result):
    faces: list[Face]


class FacesDetectResponse(Response):
    results: list[ImageFaces]


class EmbeddedFace(Face):
    embedding: list[float]


class ImageEmbeddings(Result):
    faces: list[EmbeddedFace]


class FacesEmbedResponse(Response):
    results: list[ImageEmbeddings]


class VerifyResponse(Response):
    similarity: float
    threshold: float
    same_person: bool
    faces: list[Face]
    faces_found: list[int]


class Match(Result):
    identity: str
    similarity: float


class IdentifiedFace(Face):
    identity: str = Field(description="best match at or above the threshold, else 'unknown'")
    similarity: float | None
    matches: list[Match]


class ImageIdentities(Result):
    faces: list[IdentifiedFace]


class IdentifyResponse(Response):
    threshold: float
    results: list[ImageIdentities]


class EnrolResponse(Response):
    identity: str
    added: int
    photos: int
    faces: list[Face]


class GalleryEntry(Result):
    identity: str
    photos: int


class GalleryResponse(Response):
    identities: list[GalleryEntry]


class ForgetResponse(Response):
    identity: str
    removed: int


# -- operations -----------------------------------------------------------------------------------
class ModelInfo(Result):
    name: str
    task: str | None
    state: str
    reason: str | None = None
    default_version: int | None = None
    versions: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] | None = None


class ModelList(Result):
    models: list[ModelInfo]
