"""Slow clients: headers or body trickling in are answered 408 and dropped; others are served."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import httpx
import orjson

from tests.serving.reliability.conftest import RuledServer, raw_request, read_response, status_of

BODY = orjson.dumps(
    {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
)
HEAD = (
    b"POST /v2/models/scale/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)
)


def test_slow_headers_and_bodies_are_cut_and_others_served(tiny_store: Path) -> None:
    with RuledServer(tiny_store, header_timeout_s=1.0, body_timeout_s=1.5) as srv:
        started = time.monotonic()
        partial_heads = [raw_request(srv.url, HEAD[:40]) for _ in range(25)]
        partial_bodies = [raw_request(srv.url, HEAD, BODY[:10]) for _ in range(25)]
        idle = [raw_request(srv.url, b"") for _ in range(5)]
        # One client drips its headers a byte at a time: every byte arrives in time, the whole
        # does not. Another drips its body.
        drips = [raw_request(srv.url, b""), raw_request(srv.url, HEAD)]
        stop = threading.Event()

        def drip() -> None:
            for i in range(len(HEAD)):
                if stop.wait(0.1):
                    return
                for sock, data in zip(drips, (HEAD, BODY), strict=True):
                    with contextlib.suppress(OSError):
                        sock.sendall(data[i : i + 1])

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        # 60 slow clients hold connections; everyone else is still served at once.
        with httpx.Client(base_url=srv.url, timeout=5) as client:
            for _ in range(20):
                r = client.post("/v2/models/scale/infer", content=BODY)
                assert r.status_code == 200
                assert r.json()["outputs"][0]["data"] == [2, 4, 6, 8]
        for sock in [*partial_heads, *idle, *partial_bodies, *drips]:
            raw, closed = read_response(sock, timeout_s=10)
            assert closed, "a slow client was not dropped"
            assert status_of(raw) == 408, raw[:200]
            assert b'"code":"request_timeout"' in raw
            sock.close()
        stop.set()
        dripper.join(timeout=5)
        # All were dropped within the timeouts (plus scheduling slack), not at the 10 s limit.
        assert time.monotonic() - started < 8
        assert httpx.post(srv.url + "/v2/models/scale/infer", content=BODY).status_code == 200
