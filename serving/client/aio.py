"""``AsyncClient``: the same methods as ``Client``, awaitable (httpx.AsyncClient)."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import httpx

from serving.client.calls import Call, Endpoints, retry_delay
from serving.client.sync import _headers


class AsyncClient(Endpoints):
    """``async with AsyncClient(url) as fovea: await fovea.detect("scene.jpg")``.

    Every task method of ``Client`` exists here and returns an awaitable of the same typed
    result; timeouts, retries and the API key work the same way.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        max_wait_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self.max_wait_s = max_wait_s
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=_headers(api_key), timeout=timeout, transport=transport
        )

    async def _run(self, call: Call[Any]) -> Any:  # type: ignore[override]
        attempt = 0
        while True:
            response = await self._http.send(call.request(self._http))
            delay = retry_delay(response, attempt, self.max_wait_s)
            if delay is None or attempt >= self.retries:
                return call.parse(response)
            attempt += 1
            await asyncio.sleep(delay)

    async def ready(self) -> bool:
        return (await self._http.get("/readyz")).status_code == 200

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
