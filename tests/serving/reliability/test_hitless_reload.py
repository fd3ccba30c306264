"""Reloading a changed model file under load loses nothing: requests finish on the version they
resolved, new ones go to the new version once it is ready."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.models import scale_model
from tests.server import LiveServer
from tests.serving.reliability.conftest import raw_request, read_response, status_of
from tests.serving.reliability.test_slow_clients import BODY, HEAD


def test_request_that_resolved_the_old_version_finishes_on_it(tiny_store: Path) -> None:
    with LiveServer(tiny_store) as srv:
        pending = raw_request(srv.url, HEAD, BODY[:10])  # resolved v1 (x2), body still coming
        time.sleep(0.3)
        scale_model(tiny_store / "scale" / "1" / "model.onnx", factor=3.0)
        with ThreadPoolExecutor(1) as pool:
            reload = pool.submit(
                httpx.post, srv.url + "/v2/repository/models/scale/load", timeout=30
            )
            time.sleep(0.5)  # the new version is loaded and swapped in meanwhile
            fresh = httpx.post(srv.url + "/v2/models/scale/infer", content=BODY, timeout=10)
            assert fresh.json()["outputs"][0]["data"] == [3, 6, 9, 12]
            pending.sendall(BODY[10:])
            raw, _ = read_response(pending, timeout_s=10)
            pending.close()
            assert status_of(raw) == 200, raw[:300]
            assert b'"data":[2.0,4.0,6.0,8.0]' in raw  # the old version answered
            assert reload.result().status_code == 200


def test_reloads_under_load_fail_no_request(tiny_store: Path) -> None:
    model_file = tiny_store / "scale" / "1" / "model.onnx"
    with LiveServer(tiny_store) as srv:
        stop = threading.Event()
        statuses: list[int] = []
        values: set[float] = set()

        def client() -> None:
            with httpx.Client(base_url=srv.url, timeout=10) as http:
                while not stop.is_set():
                    r = http.post("/v2/models/scale/infer", content=BODY)
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        values.add(r.json()["outputs"][0]["data"][0])

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        try:
            for factor in (3.0, 4.0, 5.0, 6.0):
                time.sleep(0.3)
                scale_model(model_file, factor=factor)
                r = httpx.post(srv.url + "/v2/repository/models/scale/load", timeout=30)
                assert r.status_code == 200
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=20)
        failures = [s for s in statuses if s != 200]
        print(f"{len(statuses)} requests across 4 reloads, {len(failures)} failed")
        assert len(statuses) > 100 and failures == []
        assert values == {2.0, 3.0, 4.0, 5.0, 6.0}  # every version served in turn
