"""Admission at the door: a request over the model's rows-in-flight bound gets 503 before any
of its images is decoded (the decoder is gated, as the batcher tests gate the runner)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from serving.core.runtime import OnnxModel
from serving.imaging import preprocess
from tests.conftest import MODEL_STORE, gate_decoder, wait_for_decodes
from tests.server import LiveServer


def _store(tmp_path: Path, max_in_flight: int) -> Path:
    store = tmp_path / "store"
    shutil.copytree(MODEL_STORE / "mobilenet_v2", store / "mobilenet_v2")
    path = store / "mobilenet_v2" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["batching"]["max_in_flight"] = max_in_flight
    path.write_text(yaml.safe_dump(config))
    return store


@pytest.fixture
def gated_decoder(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[int]]:
    """Image decoding blocks until the gate opens; ``started`` records each decode begun."""
    return gate_decoder(monkeypatch, preprocess)


def test_503_comes_before_decoding(tmp_path: Path, photos, gated_decoder) -> None:
    gate, started = gated_decoder
    image = photos["chelsea"]
    with LiveServer(_store(tmp_path, 2), decode_threads=2) as srv:
        url = srv.url + "/v1/classify"

        def post() -> httpx.Response:
            return httpx.post(url, files={"f": ("c.jpg", image, "image/jpeg")}, timeout=60)

        with ThreadPoolExecutor(2) as pool:
            admitted = [pool.submit(post) for _ in range(2)]
            wait_for_decodes(started, 2)  # both admitted and blocked in the decoder
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
        # no bound in time (max_wait_ms) here, so nothing shrinks the count bound
        assert 'fovea_admission_headroom{model="mobilenet_v2",version="1"} 1.0' in metrics


def _classify_raw(url: str, image: bytes) -> httpx.Response:
    return httpx.post(
        url + "/v1/classify", content=image, headers={"content-type": "image/jpeg"}, timeout=60
    )


def _headers_only(url: str, ctype: str, path: str = "/v1/classify") -> tuple[int, str]:
    """Send a POST's headers announcing a 100 kB body and never the body: only a server that
    answers before reading the body replies (status, Retry-After) within the timeout."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\n"
            "Content-Length: 100000\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, "connection closed without an answer"
            head += chunk
    lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers.get("retry-after", headers.get("Retry-After", ""))


def test_the_door_refuses_before_reading_the_body(tmp_path: Path, photos, gated_decoder) -> None:
    """At the bound, a request is refused from its headers alone; a request that may still
    name another model of the task (multipart, JSON, ?model=) is let in to the full check."""
    gate, started = gated_decoder
    store = _store(tmp_path, 2)
    other = store / "other_classifier"
    shutil.copytree(store / "mobilenet_v2", other)
    config = yaml.safe_load((other / "config.yaml").read_text())
    config.update(name="other_classifier", default_for_task=False)
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    image = photos["chelsea"]
    with LiveServer(store, decode_threads=4) as srv:
        url = srv.url + "/v1/classify"

        def post(**kw) -> httpx.Response:  # type: ignore[no-untyped-def]
            return httpx.post(url, timeout=60, **kw)

        raw = {"content": image, "headers": {"content-type": "image/jpeg"}}
        with ThreadPoolExecutor(4) as pool:
            admitted = [pool.submit(post, **raw) for _ in range(2)]  # the default model's two
            wait_for_decodes(started, 2)
            assert len(started) == 2
            # A raw body names no model: the default's bound decides, from the headers.
            status, retry_after = _headers_only(srv.url, "image/jpeg")
            assert status == 503 and int(retry_after) >= 1
            # A multipart body could still name other_classifier, which has room: let in,
            # and it does go to other_classifier.
            named = pool.submit(
                post,
                files={"f": ("c.jpg", image, "image/jpeg")},
                data={"model": "other_classifier"},
            )
            also = pool.submit(post, params={"model": "other_classifier"}, **raw)
            wait_for_decodes(started, 4)
            assert len(started) == 4
            # Now every classification model is full: multipart is refused at the door too.
            status, _ = _headers_only(srv.url, "multipart/form-data; boundary=x")
            assert status == 503
            assert len(started) == 4  # none of the refused requests reached the decoder
            gate.set()
            assert [f.result().status_code for f in admitted] == [200, 200]
            assert named.result().json()["model"] == "other_classifier"
            assert also.result().json()["model"] == "other_classifier"


def test_v2_infer_shares_the_models_bound_on_rows_in_flight(
    tmp_path: Path, photos, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Open Inference Protocol requests count their rows against the same bound as the task
    routes, and are refused at the door (before their body is read) when it is full."""
    gate, running = threading.Event(), threading.Event()
    real = OnnxModel.run_rows

    def gated(self: OnnxModel, rows: list) -> list:  # type: ignore[type-arg]
        running.set()
        assert gate.wait(30), "gate never opened"
        return real(self, rows)

    monkeypatch.setattr(OnnxModel, "run_rows", gated)
    zeros = np.zeros((2, 3, 224, 224), np.float32)
    v2_body = {
        "inputs": [
            {
                "name": "pixels",
                "shape": [2, 3, 224, 224],
                "datatype": "FP32",
                "data": zeros.ravel().tolist(),
            }
        ],
        "outputs": [{"name": "logits"}],
    }
    with LiveServer(_store(tmp_path, 2)) as srv:
        infer = srv.url + "/v2/models/mobilenet_v2/infer"
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(httpx.post, infer, json=v2_body, timeout=60)  # 2 rows: full
            assert running.wait(30)
            refused = _classify_raw(srv.url, photos["chelsea"])
            assert refused.status_code == 503
            assert refused.json()["code"] == "overloaded"
            status, retry_after = _headers_only(
                srv.url, "application/json", path="/v2/models/mobilenet_v2/infer"
            )
            assert status == 503 and int(retry_after) >= 1
            gate.set()
            answer = held.result()
        assert answer.status_code == 200
        (logits,) = answer.json()["outputs"]
        assert logits["shape"] == [2, 1000]
        metrics = httpx.get(srv.url + "/metrics").text
        assert 'fovea_rejected_total{model="mobilenet_v2",version="1"} 2.0' in metrics
        assert 'fovea_rows_in_flight{model="mobilenet_v2",version="1"} 0.0' in metrics


def test_decode_and_runner_threads_yield_to_the_event_loop(tmp_path: Path, photos) -> None:
    """They run niced (compute_nice), so 503s and health checks are answered promptly."""
    base = os.getpriority(os.PRIO_PROCESS, 0)
    with LiveServer(_store(tmp_path, 8), compute_nice=7) as srv:
        r = _classify_raw(srv.url, photos["chelsea"])
        assert r.status_code == 200
        compute = [
            t
            for t in threading.enumerate()
            if t.name.startswith(("decode", "run-mobilenet_v2")) and t.native_id
        ]
        nice = {
            t.name.rsplit("_", 1)[0]: os.getpriority(os.PRIO_PROCESS, t.native_id) for t in compute
        }
        # named at the OS level too (top -H, cpu_split.py), within Linux's 15 bytes
        os_names = {
            Path(f"/proc/self/task/{t.native_id}/comm").read_text().strip() for t in compute
        }
    assert nice == {"decode": min(19, base + 7), "run-mobilenet_v2/1": min(19, base + 7)}
    assert os_names == {"decode_0", "run-mobilenet_v"}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base
