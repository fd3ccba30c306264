"""JSON responses (orjson) and the one error format: ``{"error": message, "code": code}``."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match

from serving.errors import FoveaError

log = logging.getLogger(__name__)


class ORJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def error_response(status: int, message: str, code: str, headers: dict[str, str] | None = None):
    return ORJSONResponse({"error": message, "code": code}, status_code=status, headers=headers)


_MAX_ERRORS_SHOWN = 10
_MAX_LOC_CHARS = 80


def describe_validation(errors: list[dict[str, Any]]) -> str:
    """The first few errors, each field name cut short: a hostile body is not echoed back."""
    parts = []
    for err in errors[:_MAX_ERRORS_SHOWN]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        if len(loc) > _MAX_LOC_CHARS:
            loc = loc[:_MAX_LOC_CHARS] + "..."
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    if len(errors) > _MAX_ERRORS_SHOWN:
        parts.append(f"... and {len(errors) - _MAX_ERRORS_SHOWN} more errors")
    return "; ".join(parts)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route fully matches at this request's path (nested routers too)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FoveaError)
    async def _fovea(_: Request, exc: FoveaError) -> ORJSONResponse:
        if exc.status >= 500 and exc.status not in (503, 504):
            log.error("%s: %s", exc.code, exc.message)
        return error_response(exc.status, exc.message, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> ORJSONResponse:
        return error_response(422, describe_validation(list(exc.errors())), "validation_error")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> ORJSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = exc.headers
        if exc.status_code == 405:  # Starlette names only the first route matching the path
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return error_response(exc.status_code, str(exc.detail), code, headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> ORJSONResponse:
        log.exception("unhandled error")
        return error_response(500, f"internal error: {type(exc).__name__}", "internal_error")
