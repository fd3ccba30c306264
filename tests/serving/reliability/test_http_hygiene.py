"""CORS, JSON health bodies, store-relative failure reasons and hostile JSON bodies."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
import orjson

from tests.conftest import MODEL_STORE
from tests.models import write_model_folder
from tests.server import LiveServer
from tests.serving.reliability.test_slow_clients import BODY

ORIGIN = "https://app.example"


def test_cors_is_off_by_default(tiny_store: Path) -> None:
    with LiveServer(tiny_store) as srv:
        r = httpx.post(srv.url + "/v2/models/scale/infer", content=BODY, headers={"Origin": ORIGIN})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_cors_answers_preflights_and_marks_responses(tiny_store: Path) -> None:
    with LiveServer(
        tiny_store,
        cors_origins=[ORIGIN],
        api_keys=[{"name": "web", "key": "k-web-0123456789abcdef", "scopes": ["infer"]}],
    ) as srv:
        preflight = {
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        }
        r = httpx.options(srv.url + "/v2/models/scale/infer", headers=preflight)
        assert r.status_code == 200  # answered without a key
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in r.headers["access-control-allow-methods"]
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        other = httpx.options(
            srv.url + "/v2/models/scale/infer",
            headers={**preflight, "Origin": "https://evil.example"},
        )
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        for key, status in ((None, 401), ("k-web-0123456789abcdef", 200)):
            headers = {"Origin": ORIGIN} | ({"X-API-Key": key} if key else {})
            r = httpx.post(srv.url + "/v2/models/scale/infer", content=BODY, headers=headers)
            assert r.status_code == status
            assert r.headers["access-control-allow-origin"] == ORIGIN  # errors readable too


def test_health_bodies_are_json_and_reasons_hide_server_paths(tmp_path: Path) -> None:
    write_model_folder(tmp_path, "scale")
    missing = write_model_folder(tmp_path, "missing_onnx")
    (missing / "1" / "model.onnx").unlink()
    with LiveServer(tmp_path) as srv:
        assert httpx.get(srv.url + "/v2/health/live").json() == {"live": True}
        assert httpx.get(srv.url + "/v2/health/ready").json() == {"ready": True}
        assert httpx.get(srv.url + "/healthz").json() == {"status": "ok"}
        ready = httpx.get(srv.url + "/v2/models/scale/ready").json()
        assert ready == {"name": "scale", "version": "1", "ready": True}
        listed = {m["name"]: m for m in httpx.get(srv.url + "/v1/models").json()["models"]}
        reason = listed["missing_onnx"]["reason"]
        assert reason == "missing_onnx/1/model.onnx does not exist"
        index = httpx.post(srv.url + "/v2/repository/index").text
        assert str(tmp_path) not in index and str(tmp_path) not in str(listed)


def test_json_body_with_many_unknown_keys_is_refused_early(
    server: LiveServer, photos: dict[str, bytes]
) -> None:
    doc = {f"k{i}": i for i in range(200_000)}
    doc["images"] = [base64.b64encode(photos["chelsea"]).decode()]
    started = time.perf_counter()
    r = httpx.post(
        server.url + "/v1/classify",
        content=orjson.dumps(doc),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    elapsed = time.perf_counter() - started
    assert r.status_code == 400 and r.json()["code"] == "too_many_fields"
    assert len(r.content) < 1000
    print(f"200k unknown keys refused in {elapsed * 1000:.0f} ms")
    few = {f"bogus{i}": 1 for i in range(40)} | {"images": doc["images"]}
    r = httpx.post(server.url + "/v1/classify", json=few)
    assert r.status_code == 422 and "and 30 more errors" in r.json()["error"]
    assert len(r.content) < 2000


def test_text_that_is_not_utf8_is_refused(photos: dict[str, bytes]) -> None:
    with LiveServer(MODEL_STORE, load_models=["vqa", "vqa_encoder"]) as srv:
        url = srv.url + "/v1/vqa"
        files = {"image": ("shape.jpg", photos["coffee"], "image/jpeg")}
        good = httpx.post(url, files=files, data={"question": "what colour is the shape?"})
        assert good.status_code == 200, good.text
        bad_text = b"what colour is the shape?" + b"\xff\xfe"
        r = httpx.post(url, files={**files, "question": (None, bad_text)})
        assert r.status_code == 400 and r.json()["code"] == "invalid_text"
        assert "'question'" in r.json()["error"]
        r = httpx.post(url + "?question=what%20colour%ff", files=files)
        assert r.status_code == 400 and r.json()["code"] == "invalid_text"
        body = b'{"question": "what \xff colour", "images": []}'
        r = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400


def test_method_not_allowed_names_every_method_of_the_path(tiny_store: Path) -> None:
    with LiveServer(tiny_store) as srv:
        r = httpx.put(srv.url + "/v1/faces/gallery/alice")
        assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"
        assert {"DELETE", "POST"} <= set(r.headers["allow"].split(", "))
        r = httpx.put(srv.url + "/v1/faces/gallery")
        assert r.status_code == 405 and "GET" in r.headers["allow"]
