"""The OpenAPI document: FastAPI's, plus the error bodies every route really answers.

Task routes declare their errors themselves (``serving.http.docs.error_responses``). For the
others, FastAPI documents a 422 ``HTTPValidationError`` this server never sends (validation
errors are ``{"error", "code"}`` like every other error) and no other status; which statuses
such a route can answer follows from its shape, so they are derived here, in one place.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from serving.http.docs import ErrorBody

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_WHY = {
    400: "Bad input: an image that does not decode, bad base64 or JSON, wrong tensor shape",
    401: "Missing or wrong bearer token",
    404: "Unknown model or version",
    413: "Body, image or image count over the server's limits",
    415: "Unsupported content type",
    422: "Invalid options (the message names the field)",
    503: "Queue full (retry after `Retry-After` seconds) or model not ready",
    504: "Deadline (`timeout_ms`) exceeded",
}
_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}


def _statuses(path: str, method: str, op: dict[str, Any]) -> list[int]:
    codes: set[int] = set()
    has_body = "requestBody" in op
    if has_body:
        codes |= {400, 413, 415, 422}
    names_model = "{name}" in path
    runs_model = method == "post" and (path.startswith("/v1/") or path.endswith("/infer"))
    if names_model or runs_model or path.startswith("/v1/faces/gallery"):
        codes |= {404, 503}
    if runs_model and not path.startswith("/v2/repository"):
        codes |= {504}
    if path.startswith("/v2/repository/models/"):
        codes |= {401}
    if op.get("parameters"):
        codes |= {422}
    return sorted(codes)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            if "HTTPValidationError" in str(responses.get("422")):  # FastAPI's: never sent
                del responses["422"]
            for status in _statuses(path, method, op):
                entry: dict[str, Any] = {
                    "description": _WHY[status],
                    "content": {"application/json": {"schema": ERROR_REF}},
                }
                responses.setdefault(str(status), entry)
            if "503" in responses:
                responses["503"].setdefault("headers", _RETRY_AFTER)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return doc


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` with the cached, error-documented document."""
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if "doc" not in cache:
            cache["doc"] = build_openapi(app)
        return cache["doc"]

    app.openapi = openapi  # type: ignore[method-assign]
