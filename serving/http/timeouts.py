"""Bounds on slow clients: headers and body must arrive within configured times.

uvicorn bounds idle keep-alive connections but neither a request's headers nor its body: a
client sending one byte a second holds a connection (and, in the body case, a request) forever.
The header bound lives in the HTTP protocol (the app never sees a request whose headers are
incomplete); the body bound is ASGI middleware around ``receive``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.errors import RequestTimeout


def _timeout_response(seconds: float) -> bytes:
    body = orjson.dumps(
        {"error": f"request headers not received within {seconds:g} s", "code": "request_timeout"}
    )
    head = (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(body)
    )
    return head + body


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering 408 and closing when headers come too slowly.

    The clock starts when a connection opens or when the first byte of a request arrives after
    the previous response; it stops once the parser has produced the request (a new cycle).
    The limit is the uvicorn config's ``header_timeout_s`` (see :mod:`serving.server`), so the
    class stays importable by name for worker processes. In a worker that balances connections
    with others, opening and closing a connection also updates its count on the shared board.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = float(getattr(self.config, "header_timeout_s", 10.0))
        # Set by a worker balancing connections with others (serving.http.balance).
        self._connections_changed = getattr(self.config, "on_connections_changed", None)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_cycle: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()
        if self._connections_changed is not None:
            self._connections_changed()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)
        if self._connections_changed is not None:
            self._connections_changed()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm_header_timer()
        super().data_received(data)
        if self.cycle is not self._header_cycle:  # the headers are complete: a request began
            self._disarm_header_timer()

    def _arm_header_timer(self) -> None:
        self._header_cycle = self.cycle
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.cycle is not self._header_cycle:
            return
        self.transport.write(_timeout_response(self.header_timeout_s))
        self.transport.close()


class BodyDeadline:
    """Pure ASGI middleware: the whole request body must arrive within ``timeout_s``.

    A late body raises :class:`RequestTimeout` inside the route's read, which answers 408 with
    ``Connection: close`` so the slow client is dropped after its answer.
    """

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # e.g. waiting for a disconnect while streaming a response
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(
                    f"request body not received within {self.timeout_s:g} s"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, timed_receive, send)
