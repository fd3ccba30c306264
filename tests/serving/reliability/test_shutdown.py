"""SIGTERM to a real ``fovea serve``: in-flight requests are answered, one cut by the drain
window gets a 503 (not a reset), and the process exits with status 0."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from tests.serving.reliability.conftest import cli_server, raw_request, read_response, status_of
from tests.serving.reliability.test_slow_clients import BODY, HEAD


def test_sigterm_drains_answers_cut_requests_and_exits_zero(tiny_store: Path) -> None:
    with cli_server(tiny_store, FOVEA_GRACEFUL_SHUTDOWN_S="2", FOVEA_BODY_TIMEOUT_S="60") as (
        proc,
        url,
    ):
        assert httpx.post(url + "/v2/models/scale/infer", content=BODY).status_code == 200
        # In flight at SIGTERM: eight uploads that finish within the window, one that never does.
        finishing = [raw_request(url, HEAD, BODY[:10]) for _ in range(8)]
        endless = raw_request(url, HEAD, BODY[:10])
        time.sleep(0.3)  # all nine are inside their handlers, reading the body
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        for sock in finishing:
            sock.sendall(BODY[10:])
        for sock in finishing:
            raw, closed = read_response(sock, timeout_s=10)
            assert status_of(raw) == 200, raw[:300]
            assert b'"data":[2.0,4.0,6.0,8.0]' in raw
            sock.close()
        raw, closed = read_response(endless, timeout_s=10)
        endless.close()
        assert status_of(raw) == 503, raw[:300]
        assert b'"code":"shutting_down"' in raw and b"retry-after: 1" in raw.lower()
        assert closed
        assert proc.wait(timeout=20) == 0
