"""Request ids and the access log, as one pure ASGI middleware.

A client's ``X-Request-ID`` is kept when it is a short token (so it is safe to log and echo);
otherwise one is generated. Either way it is returned on the response, set as the context of
every log line written while the request runs, and written on the request's access-log line.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.logs import request_id

log = logging.getLogger("fovea.access")

HEADER = b"x-request-id"
MAX_LENGTH = 128
_VALID = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,%d}" % MAX_LENGTH)


def pick_request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's id if it is a short safe token, else a new one."""
    for key, value in headers:
        if key == HEADER and _VALID.fullmatch(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


class AccessLog:
    """Pure ASGI (no BaseHTTPMiddleware), like ``RequestMetrics``: no extra task per request."""

    def __init__(self, app: ASGIApp, *, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = pick_request_id(scope["headers"])
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message["headers"] = [*headers, (HEADER, rid.encode("ascii"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.enabled:
                self._log(scope, status, time.perf_counter() - started)
            request_id.reset(token)

    @staticmethod
    def _log(scope: Scope, status: int, seconds: float) -> None:
        method, path = scope["method"], scope["path"]
        model = scope.get("state", {}).get("model", "")
        latency_ms = round(seconds * 1000, 2)
        client = scope.get("client")
        # 503/504 are load or readiness, not faults: a warning; any other 5xx is a fault.
        level = logging.INFO if status < 500 else logging.WARNING
        if status >= 500 and status not in (503, 504):
            level = logging.ERROR
        log.log(
            level,
            "%s %s %d %.1fms%s",
            method,
            path,
            status,
            latency_ms,
            f" model={model}" if model else "",
            extra={
                "request_id": request_id.get(),
                "method": method,
                "path": path,
                "status": status,
                "latency_ms": latency_ms,
                "model": model,
                "client": f"{client[0]}:{client[1]}" if client else "",
            },
        )
