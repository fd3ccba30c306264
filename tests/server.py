"""Run the real app under uvicorn on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx
import uvicorn

from serving.app import create_app
from serving.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``with LiveServer(store) as srv: httpx.get(srv.url + "/readyz")``; stops on exit."""

    def __init__(self, model_store: Path, **settings: object) -> None:
        self.port = free_port()
        self.settings = Settings(model_store=model_store, port=self.port, **settings)
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(self.settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        self.wait_ready()
        return self

    def wait_ready(self, timeout_s: float = 60) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server at {self.url} not ready after {timeout_s} s")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
