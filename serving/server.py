"""Run the app under uvicorn with Fovea's connection rules: header timeout and drain on SIGTERM.

uvicorn re-raises SIGTERM after a graceful stop (exit status 143) and cancels requests still
running after its timeout without answering them. Here SIGTERM starts the app's drain window
(:class:`serving.http.drain.Drain`), requests cut by it are answered 503, and a graceful stop
exits with status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from types import FrameType

import uvicorn
from fastapi import FastAPI

from serving.http.drain import Drain
from serving.http.timeouts import header_timeout_protocol
from serving.logs import logging_config
from serving.settings import Settings

_CUT_MARGIN_S = 2.0  # time for cut requests' 503s to leave before uvicorn cancels anything


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            with contextlib.suppress(RuntimeError):  # no loop yet: nothing runs to drain
                self.drain.begin(asyncio.get_running_loop())
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM:  # a drained stop is a clean exit, not death by signal
            self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]


def server_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=logging_config(settings.log_level, settings.log_format),  # one format for all
        access_log=False,  # serving.http.access writes one line per request instead
        http=header_timeout_protocol(settings.header_timeout_s),
        timeout_graceful_shutdown=int(settings.graceful_shutdown_s + _CUT_MARGIN_S),
    )


def serve(app: FastAPI, settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; returns after the drain."""
    DrainingServer(server_config(app, settings), app.state.drain).run()
