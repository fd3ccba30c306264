"""A stand-in HTTP server with a known behaviour, for checking the load generator itself.

``/sleep?ms=N`` answers after N ms (concurrently, like a slow but unsaturated server);
``/fail?every=K`` answers 500 to every K-th request and 200 to the others.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from aiohttp import web

from tests.server import free_port


async def _sleep(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("ms", "0")) / 1000)
    return web.json_response({"ok": True})


class StandIn:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.calls = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _fail(self, request: web.Request) -> web.Response:
        self.calls += 1
        await request.read()
        if self.calls % int(request.query.get("every", "2")) == 0:
            return web.json_response({"error": "made to fail", "code": "test"}, status=500)
        return web.json_response({"ok": True})

    async def _start(self) -> None:
        app = web.Application()
        app.add_routes([web.post("/sleep", _sleep), web.post("/fail", self._fail)])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def __enter__(self) -> StandIn:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
