"""Admission at the door: a request over the model's rows-in-flight bound gets 503 before any
of its images is decoded (the decoder is gated, as the batcher tests gate the runner)."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml

from serving.imaging import preprocess
from tests.conftest import MODEL_STORE
from tests.server import LiveServer


def _store(tmp_path: Path, max_in_flight: int) -> Path:
    store = tmp_path / "store"
    shutil.copytree(MODEL_STORE / "mobilenet_v2", store / "mobilenet_v2")
    path = store / "mobilenet_v2" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["batching"]["max_in_flight"] = max_in_flight
    path.write_text(yaml.safe_dump(config))
    return store


def test_503_comes_before_decoding(tmp_path: Path, photos, monkeypatch) -> None:
    gate = threading.Event()
    started: list[int] = []
    real = preprocess.decode_image

    def gated(data: bytes, **kw):  # type: ignore[no-untyped-def]
        started.append(len(data))
        assert gate.wait(30), "gate never opened"
        return real(data, **kw)

    monkeypatch.setattr(preprocess, "decode_image", gated)
    image = photos["chelsea"]
    with LiveServer(_store(tmp_path, 2), decode_threads=2) as srv:
        url = srv.url + "/v1/classify"

        def post() -> httpx.Response:
            return httpx.post(url, files={"f": ("c.jpg", image, "image/jpeg")}, timeout=60)

        with ThreadPoolExecutor(2) as pool:
            admitted = [pool.submit(post) for _ in range(2)]
            for _ in range(200):  # both admitted and blocked in the decoder
                if len(started) == 2:
                    break
                time.sleep(0.05)
            assert len(started) == 2
            refused = post()
            assert refused.status_code == 503
            assert refused.json()["code"] == "overloaded"
            assert int(refused.headers["Retry-After"]) >= 1
            assert len(started) == 2  # the refused request was never decoded
            gate.set()
            assert [f.result().status_code for f in admitted] == [200, 200]
        assert post().status_code == 200  # the bound frees as answers go out
        metrics = httpx.get(srv.url + "/metrics").text
        assert 'fovea_rejected_total{model="mobilenet_v2",version="1"} 1.0' in metrics
