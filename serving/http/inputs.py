"""Reading task requests: images as multipart uploads, base64 JSON or a raw image body.

Options come from the query string, multipart text fields or JSON keys, and are validated by
the task's pydantic options model, so every endpoint reports bad options the same way.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from serving.errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMedia
from serving.http.responses import describe_validation
from serving.settings import Settings

Options = TypeVar("Options", bound=BaseModel)


@dataclass
class ImageRequest:
    images: list[bytes]
    options: dict[str, Any] = field(default_factory=dict)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) before reading more than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # later request.form()/json() reuse it instead of the spent stream
    return body


async def read_image_request(request: Request, settings: Settings) -> ImageRequest:
    body = await read_body(request, settings.max_upload_bytes)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    options: dict[str, Any] = dict(request.query_params)
    if ctype == "multipart/form-data":
        images = await _multipart(request, options, settings)
    elif ctype == "application/json":
        images = _json(body, options)
    elif ctype.startswith("image/") or ctype == "application/octet-stream":
        images = [body]
    else:
        raise UnsupportedMedia(
            f"content type {ctype or '(none)'!r} not supported: send multipart/form-data with "
            "image files, application/json with base64 'images', or a raw image/* body"
        )
    if not images:
        raise BadRequest("no image in the request", code="missing_image")
    if len(images) > settings.max_images_per_request:
        raise PayloadTooLarge(
            f"{len(images)} images in one request; the limit is {settings.max_images_per_request}",
            code="too_many_images",
        )
    return ImageRequest(images, options)


def parse_options(model: type[Options], options: dict[str, Any]) -> Options:
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        raise Unprocessable(describe_validation(list(exc.errors()))) from None


async def _multipart(request: Request, options: dict[str, Any], settings: Settings) -> list[bytes]:
    try:
        form = await request.form(max_files=settings.max_images_per_request + 1, max_fields=64)
    except Exception as exc:  # the multipart parser raises several types for malformed bodies
        raise BadRequest(f"malformed multipart body: {exc}", code="malformed_body") from exc
    images: list[bytes] = []
    fields: dict[str, list[Any]] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            images.append(await value.read())
        else:
            fields.setdefault(key, []).append(value)
    await form.close()
    # A field sent more than once (question=..., question=...) arrives as a list.
    options.update({k: v[0] if len(v) == 1 else v for k, v in fields.items()})
    return images


def _json(body: bytes, options: dict[str, Any]) -> list[bytes]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"invalid JSON: {exc}", code="malformed_body") from None
    if not isinstance(doc, dict):
        raise BadRequest("JSON body must be an object", code="malformed_body")
    raw = doc.pop("images", None)
    if raw is None and "image" in doc:
        raw = [doc.pop("image")]
    if not isinstance(raw, list):
        raise BadRequest("JSON body needs 'images': a list of base64 strings", code="missing_image")
    options.update(doc)
    return [_b64(item, i) for i, item in enumerate(raw)]


def _b64(item: Any, index: int) -> bytes:
    if isinstance(item, dict):
        item = item.get("b64", item.get("data"))
    if not isinstance(item, str):
        raise BadRequest(f"images[{index}] must be a base64 string", code="malformed_body")
    if item.startswith("data:") and "," in item:  # data URLs from browsers
        item = item.split(",", 1)[1]
    try:
        return base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"images[{index}] is not valid base64", code="invalid_base64") from None
