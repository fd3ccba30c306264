"""Pure ASGI middleware giving each request a lease scope on the model versions it resolves.

A hot reload swaps a changed version out while requests that resolved the old one may still be
decoding images; the lease keeps the old version's batcher open until they finish on it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.core.repository import request_leases


class VersionLeases:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with request_leases():
            await self.app(scope, receive, send)
