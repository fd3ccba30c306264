"""Servers for the reliability suite: in-thread with Fovea's connection rules, or a real
``python -m serving.cli serve`` subprocess (for signals). All on loopback, all stopped here."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from serving.app import create_app
from serving.server import DrainingServer, server_config
from serving.settings import Settings
from tests.conftest import ROOT
from tests.models import write_model_folder
from tests.server import free_port


@pytest.fixture
def tiny_store(tmp_path: Path) -> Path:
    write_model_folder(tmp_path, "scale", factor=2.0)
    return tmp_path


class RuledServer:
    """The app under :func:`serving.server.server_config` (header timeout protocol included)."""

    def __init__(self, store: Path, **settings: object) -> None:
        self.port = free_port()
        self.settings = Settings(model_store=store, port=self.port, log_level="warning", **settings)
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(self.settings)
        self._server = DrainingServer(server_config(self.app, self.settings), self.app.state.drain)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> RuledServer:
        self._thread.start()
        wait_ready(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


def wait_ready(url: str, timeout_s: float = 60) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"server at {url} not ready after {timeout_s} s")


@contextmanager
def cli_server(store: Path, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``python -m serving.cli serve`` as its own process; killed if the test did not stop it."""
    port = free_port()
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FOVEA_MODEL_STORE": str(store),
        "FOVEA_PORT": str(port),
        "FOVEA_LOG_LEVEL": "warning",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving.cli", "serve"],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def raw_request(url: str, head: bytes, body: bytes = b"") -> socket.socket:
    """A socket that has sent ``head`` (and ``body``) and nothing more."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(head + body)
    return sock


def read_response(sock: socket.socket, timeout_s: float) -> tuple[bytes, bool]:
    """What the server sends within ``timeout_s``, and whether it closed the connection."""
    chunks = []
    end = time.monotonic() + timeout_s
    try:
        while (left := end - time.monotonic()) > 0:
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)
    except TimeoutError:
        pass
    except ConnectionResetError:
        return b"".join(chunks), True
    return b"".join(chunks), False


def status_of(raw: bytes) -> int | None:
    if not raw.startswith(b"HTTP/1.1 "):
        return None
    return int(raw[9:12])
