"""``Client``: the blocking client (httpx)."""

from __future__ import annotations

import os
import time
from types import TracebackType
from typing import Any

import httpx

from serving.client.calls import Call, Endpoints, retry_delay


def _headers(api_key: str | None) -> dict[str, str]:
    key = api_key if api_key is not None else os.environ.get("FOVEA_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


class Client(Endpoints):
    """``with Client("http://127.0.0.1:8000") as fovea: fovea.classify("cat.jpg")``.

    ``timeout`` (seconds) bounds each HTTP attempt; 429/503 answers are retried up to
    ``retries`` times, waiting what ``Retry-After`` says (at most ``max_wait_s`` each).
    ``api_key`` (or ``$FOVEA_API_KEY``) is sent as ``Authorization: Bearer``.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        max_wait_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self.max_wait_s = max_wait_s
        self._http = httpx.Client(
            base_url=base_url, headers=_headers(api_key), timeout=timeout, transport=transport
        )

    def _run(self, call: Call[Any]) -> Any:
        attempt = 0
        while True:
            response = self._http.send(call.request(self._http))
            delay = retry_delay(response, attempt, self.max_wait_s)
            if delay is None or attempt >= self.retries:
                return call.parse(response)
            attempt += 1
            time.sleep(delay)

    def ready(self) -> bool:
        """True when every model finished loading (``/readyz``)."""
        return self._http.get("/readyz").status_code == 200

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
