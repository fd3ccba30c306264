"""ASGI middleware recording request counts and latency per endpoint, model and status."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.core.metrics import Metrics


class RequestMetrics:
    """Pure ASGI (no BaseHTTPMiddleware): it must not add a task per request on the hot path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            model = scope.get("state", {}).get("model", "")
            self.metrics.requests.labels(endpoint, model, str(status)).inc()
            self.metrics.request_seconds.labels(endpoint, model).observe(
                time.perf_counter() - started
            )
