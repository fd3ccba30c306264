"""The endpoints as data: each task method builds a ``Call`` that either client sends.

Keeping request building and response parsing free of I/O lets the sync and async clients
share every endpoint and differ only in how they send and wait.
"""

from __future__ import annotations

import email.utils
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from serving.client import models as m
from serving.client.errors import FoveaAPIError
from serving.client.inputs import ImageInput, as_upload

T = TypeVar("T")


@dataclass
class Call(Generic[T]):
    method: str
    path: str
    result: type[T]
    params: dict[str, Any] = field(default_factory=dict)
    images: Sequence[ImageInput] = ()
    data: dict[str, Any] = field(default_factory=dict)

    def request(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        files = [("image", as_upload(img, i)) for i, img in enumerate(self.images)]
        params = {k: _param(v) for k, v in self.params.items() if v is not None}
        return client.build_request(
            self.method, self.path, params=params, files=files or None, data=self.data or None
        )

    def parse(self, response: httpx.Response) -> T:
        rid = response.headers.get("x-request-id")
        if response.status_code >= 400:
            raise _error(response, rid)
        doc = response.json()
        if isinstance(doc, dict) and "request_id" in self.result.model_fields:  # type: ignore[attr-defined]
            doc["request_id"] = rid
        return self.result.model_validate(doc)  # type: ignore[attr-defined]


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return value


def _error(response: httpx.Response, rid: str | None) -> FoveaAPIError:
    try:
        doc = response.json()
        return FoveaAPIError(response.status_code, doc["error"], doc["code"], rid)
    except (ValueError, KeyError, TypeError):
        return FoveaAPIError(response.status_code, response.text[:500], "http_error", rid)


def retry_delay(response: httpx.Response, attempt: int, cap_s: float) -> float | None:
    """Seconds to wait before retrying, or None: only 429/503 are retried, as told by
    ``Retry-After`` (seconds or an HTTP date), else with exponential backoff."""
    if response.status_code not in (429, 503):
        return None
    header = response.headers.get("retry-after")
    delay = 0.5 * 2**attempt
    if header is not None:
        if header.strip().isdigit():
            delay = float(header)
        else:
            when = email.utils.parsedate_to_datetime(header)
            delay = when.timestamp() - time.time() if when is not None else delay
    return max(0.0, min(delay, cap_s))


def _common(model: str | None, version: int | None, timeout_ms: float | None) -> dict[str, Any]:
    return {"model": model, "version": version, "timeout_ms": timeout_ms}


class Endpoints(ABC):
    """One method per endpoint. ``Client`` returns the typed result; ``AsyncClient`` the same
    methods, awaitable. ``model``/``version`` choose among models of the task, ``timeout_ms`` is
    the server-side deadline, and ``**options`` passes options this client does not name yet."""

    @abstractmethod
    def _run(self, call: Call[Any]) -> Any:
        """Send ``call`` (retrying as the client's policy says) and return its parsed result."""

    def classify(
        self,
        *images: ImageInput,
        top_k: int | None = None,
        explain: str | None = None,
        explain_png: bool | None = None,
        model: str | None = None,
        version: int | None = None,
        timeout_ms: float | None = None,
        **options: Any,
    ) -> m.ClassifyResponse:
        """``explain="cam"``: a class activation map and box per label; ``explain_png=True``:
        also the top label's map drawn over the image."""
        params = {"top_k": top_k, "explain": explain, "explain_png": explain_png}
        params |= {**_common(model, version, timeout_ms), **options}
        return self._run(Call("POST", "/v1/classify", m.ClassifyResponse, params, images))

    def embed(
        self,
        *images: ImageInput,
        model: str | None = None,
        version: int | None = None,
        timeout_ms: float | None = None,
        **options: Any,
    ) -> m.EmbedResponse:
        """Unit-length image feature vectors from a classifier that exports them."""
        params = {**_common(model, version, timeout_ms), **options}
        return self._run(Call("POST", "/v1/embed", m.EmbedResponse, params, images))

    def detect(
        self,
        *images: ImageInput,
        score_threshold: float | None = None,
        max_detections: int | None = None,
        classes: Sequence[str] | None = None,
        render: bool | None = None,
        model: str | None = None,
        version: int | None = None,
        timeout_ms: float | None = None,
        **options: Any,
    ) -> m.DetectResponse:
        params = {
            "score_threshold": score_threshold,
            "max_detections": max_detections,
            "classes": classes,
            "render": render,
            **_common(model, version, timeout_ms),
            **options,
        }
        return self._run(Call("POST", "/v1/detect", m.DetectResponse, params, images))

    def segment(
        self,
        *images: ImageInput,
        mask_format: str | None = None,
        render: bool | None = None,
        model: str | None = None,
        version: int | None = None,
        timeout_ms: float | None = None,
        **options: Any,
    ) -> m.SegmentResponse:
        params = {"mask_format": mask_format, "render": render}
        params |= {**_common(model, version, timeout_ms), **options}
        return self._run(Call("POST", "/v1/segment", m.SegmentResponse, params, images))

    def caption(
        self,
        *images: ImageInput,
        beam_size: int | None = None,
        num_captions: int | None = None,
        max_length: int | None = None,
        length_penalty: float | None = None,
        model: str | None = None,
        version: int | None = None,
        timeout_ms: float | None = None,
        **options: Any,
    ) -> m.CaptionResponse:
        params = {
            "beam_size": beam_size,
            "num_captions": num_captions,
            "max_length": max_length,
            "length_penalty": length_penalty,
            **_common(model, version, timeout_ms),
            **options,
        }
        return self._run(Call("POST", "/v1/caption", m.CaptionResponse, params, images))

    def vqa(
        self,
        image: ImageInput,
        *questions: str,
        top_k: int | None = None,
        model: str | None = None,
        version: int | None = None,
        timeout_ms: float | None = None,
        **options: Any,
    ) -> m.VqaResponse:
        params = {"top_k": top_k, **_common(model, version, timeout_ms), **options}
        data = {"question": list(questions)}
        return self._run(Call("POST", "/v1/vqa", m.VqaResponse, params, [image], data))

    def faces_detect(
        self,
        *images: ImageInput,
        model: str | None = None,
        version: int | None = None,
        timeout_ms: float | None = None,
        **options: Any,
    ) -> m.FacesDetectResponse:
        params = {**_common(model, version, timeout_ms), **options}
        return self._run(Call("POST", "/v1/faces/detect", m.FacesDetectResponse, params, images))

    def faces_embed(
        self,
        *images: ImageInput,
        faces: str | None = None,
        model: str | None = None,
        version: int | None = None,
        timeout_ms: float | None = None,
        **options: Any,
    ) -> m.FacesEmbedResponse:
        params = {"faces": faces, **_common(model, version, timeout_ms), **options}
        return self._run(Call("POST", "/v1/faces/embed", m.FacesEmbedResponse, params, images))

    def faces_verify(
        self,
        first: ImageInput,
        second: ImageInput,
        threshold: float | None = None,
        model: str | None = None,
        version: int | None = None,
        timeout_ms: float | None = None,
        **options: Any,
    ) -> m.VerifyResponse:
        params = {"threshold": threshold, **_common(model, version, timeout_ms), **options}
        images = [first, second]
        return self._run(Call("POST", "/v1/faces/verify", m.VerifyResponse, params, images))

    def faces_identify(
        self,
        *images: ImageInput,
        top_k: int | None = None,
        threshold: float | None = None,
        model: str | None = None,
        version: int | None = None,
        timeout_ms: float | None = None,
        **options: Any,
    ) -> m.IdentifyResponse:
        params = {"top_k": top_k, "threshold": threshold, **_common(model, version, timeout_ms)}
        params |= options
        return self._run(Call("POST", "/v1/faces/identify", m.IdentifyResponse, params, images))

    def faces_enrol(
        self,
        identity: str,
        *images: ImageInput,
        model: str | None = None,
        version: int | None = None,
        timeout_ms: float | None = None,
    ) -> m.EnrolResponse:
        path = f"/v1/faces/gallery/{quote(identity, safe='')}"
        params = _common(model, version, timeout_ms)
        return self._run(Call("POST", path, m.EnrolResponse, params, images))

    def faces_gallery(self, model: str | None = None) -> m.GalleryResponse:
        return self._run(Call("GET", "/v1/faces/gallery", m.GalleryResponse, {"model": model}))

    def faces_forget(self, identity: str, model: str | None = None) -> m.ForgetResponse:
        path = f"/v1/faces/gallery/{quote(identity, safe='')}"
        return self._run(Call("DELETE", path, m.ForgetResponse, {"model": model}))

    def models(self) -> m.ModelList:
        return self._run(Call("GET", "/v1/models", m.ModelList))
