"""Run the app under uvicorn with Fovea's connection rules: header timeout, drain on SIGTERM,
and, with several workers, new connections spread over them (:mod:`serving.http.balance`).

uvicorn re-raises SIGTERM after a graceful stop (exit status 143) and cancels requests still
running after its timeout without answering them. Here SIGTERM starts the app's drain window
(:class:`serving.http.drain.Drain`), requests cut by it are answered 503, and a graceful stop
exits with status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import multiprocess

from serving.core.worker_board import WorkerBoard, board_file
from serving.http.balance import BalancedListener
from serving.http.drain import Drain
from serving.http.timeouts import HeaderTimeoutProtocol
from serving.logs import logging_config
from serving.settings import Settings

_CUT_MARGIN_S = 2.0  # time for cut requests' 503s to leave before uvicorn cancels anything


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain | None = None) -> None:
        super().__init__(config)
        self.drain = drain

    def _app_drain(self) -> Drain | None:
        """The drain of the app this server loaded (a worker builds its own app)."""
        if self.drain is not None:
            return self.drain
        app = getattr(self.config, "loaded_app", None)
        while app is not None and not isinstance(app, FastAPI):  # under uvicorn's wrappers
            app = getattr(app, "app", None)
        return None if app is None else app.state.drain

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's start-up; a worker sharing its socket with others accepts through a
        :class:`BalancedListener` instead of uvloop's own server."""
        board_path = getattr(self.config, "worker_board", None)
        if not sockets or board_path is None:
            await super().startup(sockets)
            return
        (sock,) = sockets  # serve_workers binds one socket
        await super().startup(sockets=[])  # the app's lifespan, no listener yet
        factory = partial(
            self.config.http_protocol_class,
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
        )
        listener = BalancedListener(
            sock,
            factory,
            WorkerBoard.for_process(board_path),
            lambda: len(self.server_state.connections),
            backlog=self.config.backlog,
        )
        self.config.on_connections_changed = listener.publish  # read by HeaderTimeoutProtocol
        self.servers = [listener]  # type: ignore[list-item]  # uvicorn only calls close()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        drain = self._app_drain()
        if not self.should_exit and drain is not None:
            with contextlib.suppress(RuntimeError):  # no loop yet: nothing runs to drain
                drain.begin(asyncio.get_running_loop())
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM:  # a drained stop is a clean exit, not death by signal
            self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]


class FoveaConfig(uvicorn.Config):
    """uvicorn's config plus the header timeout :class:`HeaderTimeoutProtocol` reads and,
    for workers sharing a socket, the worker board they balance connections on."""

    def __init__(
        self,
        *args: Any,
        header_timeout_s: float,
        worker_board: Path | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s
        self.worker_board = worker_board
        # Set in a worker once its balanced listener runs: called on every connection change.
        self.on_connections_changed: Callable[[], None] | None = None


class DrainingProcess(multiprocess.Process):
    """uvicorn's worker process, running a :class:`DrainingServer` instead of its Server."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(self.config)
        return self._server


def server_config(app: FastAPI | str, settings: Settings, **extra: Any) -> FoveaConfig:
    return FoveaConfig(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=logging_config(settings.log_level, settings.log_format),  # one format for all
        access_log=False,  # serving.http.access writes one line per request instead
        http=HeaderTimeoutProtocol,
        header_timeout_s=settings.header_timeout_s,
        timeout_graceful_shutdown=int(settings.graceful_shutdown_s + _CUT_MARGIN_S),
        **extra,
    )


def serve(app: FastAPI, settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; returns after the drain."""
    DrainingServer(server_config(app, settings), app.state.drain).run()


def serve_workers(factory: str, settings: Settings, shared: Path) -> None:
    """``settings.workers`` processes, each building its app from ``factory`` (``module:fn``),
    sharing one listening socket (balanced over a board in the ``shared`` folder); SIGTERM
    drains every worker."""
    board = WorkerBoard.create(board_file(shared))
    config = server_config(
        factory, settings, factory=True, workers=settings.workers, worker_board=board
    )
    sock = config.bind_socket()
    # uvicorn's supervisor builds its worker processes from this module-level name.
    multiprocess.Process = DrainingProcess  # type: ignore[misc]
    multiprocess.Multiprocess(config, sockets=[sock]).run()
