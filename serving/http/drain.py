"""Graceful shutdown: requests still running when the drain window closes get a 503, not a reset.

On SIGTERM the server stops accepting connections and lets running requests finish for
``graceful_shutdown_s``. Whatever is still running then (a slow upload, a long batch) is cut
here: its handler is cancelled and the client gets a JSON 503 with ``Retry-After`` and
``Connection: close``, so it can retry elsewhere instead of seeing a dropped connection.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _InFlight:
    task: asyncio.Task[object]
    started: bool = False  # the response began: it can no longer be replaced by a 503
    cut: bool = False


@dataclass(eq=False)
class Drain:
    """Shared by the server (which starts the window) and :class:`CutOnDrain` (which cuts)."""

    window_s: float
    draining: bool = False
    _running: set[_InFlight] = field(default_factory=set)

    def begin(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the drain window; safe to call from a signal handler."""
        if self.draining:
            return
        self.draining = True
        loop.call_soon_threadsafe(loop.call_later, self.window_s, self._cut)

    def _cut(self) -> None:
        waiting = [r for r in self._running if not r.started and not r.task.done()]
        if waiting:
            log.warning(
                "drain window of %g s over: answering %d request(s) with 503",
                self.window_s,
                len(waiting),
            )
        for r in waiting:
            r.cut = True
            r.task.cancel()


class CutOnDrain:
    """Pure ASGI middleware recording in-flight requests for :class:`Drain`."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        if scope["type"] != "http" or task is None:
            await self.app(scope, receive, send)
            return
        running = _InFlight(task)
        self.drain._running.add(running)

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                running.started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            if not running.cut:
                raise
            task.uncancel()
            if not running.started:
                await _unavailable(send, self.drain.window_s)
        finally:
            self.drain._running.discard(running)


async def _unavailable(send: Send, window_s: float) -> None:
    body = orjson.dumps(
        {
            "error": f"server shutting down: request not finished within the {window_s:g} s "
            "drain window; retry",
            "code": "shutting_down",
        }
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
