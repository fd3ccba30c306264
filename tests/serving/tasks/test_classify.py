"""``/v1/classify`` over real HTTP with the shipped MobileNetV2 and real photos."""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import jpeg_bytes
from tests.server import LiveServer

CATS = {"Egyptian cat", "tabby", "tiger cat"}


def classify(srv: LiveServer, *images: bytes, **params: object) -> httpx.Response:
    files = [("image", (f"img{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]
    return httpx.post(srv.url + "/v1/classify", files=files, params=params, timeout=30)


def top1(result: dict) -> dict:
    return result["predictions"][0]


def test_cat_and_espresso(server: LiveServer, photos: dict[str, bytes]) -> None:
    r = classify(server, photos["chelsea"], photos["coffee"], top_k=3)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "mobilenet_v2" and body["version"] == 1
    cat, coffee = body["results"]
    assert top1(cat)["label"] in CATS and top1(cat)["probability"] > 0.5
    assert top1(coffee)["label"] == "espresso" and top1(coffee)["class_id"] == 967
    assert top1(coffee)["probability"] > 0.9
    probs = [p["probability"] for p in cat["predictions"]]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0


def test_json_base64_matches_multipart(server: LiveServer, photos: dict[str, bytes]) -> None:
    b64 = base64.b64encode(photos["chelsea"]).decode()
    r = httpx.post(server.url + "/v1/classify", json={"images": [b64], "top_k": 1}, timeout=30)
    assert r.status_code == 200, r.text
    via_multipart = classify(server, photos["chelsea"], top_k=1).json()["results"][0]
    assert r.json()["results"][0] == via_multipart


def test_upload_over_a_megabyte_is_read_whole(server: LiveServer) -> None:
    """Multipart parts over 1 MB (where Starlette would spill to disk) arrive byte for byte."""
    import skimage.data

    cat = np.asarray(Image.fromarray(skimage.data.chelsea()).resize((1804, 1200)))
    noisy = np.clip(cat + np.random.default_rng(0).normal(0, 6, cat.shape), 0, 255)
    big = jpeg_bytes(noisy.astype(np.uint8), quality=97)
    assert len(big) > 1_100_000
    raw = httpx.post(
        server.url + "/v1/classify?top_k=2",
        content=big,
        headers={"content-type": "image/jpeg"},
        timeout=30,
    )
    upload = classify(server, big, top_k=2)
    assert upload.status_code == raw.status_code == 200, upload.text
    assert upload.json()["results"] == raw.json()["results"]
    assert top1(upload.json()["results"][0])["label"] in CATS


def test_png_and_raw_body_and_rotation(server: LiveServer) -> None:
    import skimage.data

    cat = skimage.data.chelsea()
    png = io.BytesIO()
    Image.fromarray(cat).save(png, format="PNG")
    r = httpx.post(
        server.url + "/v1/classify?top_k=1",
        content=png.getvalue(),
        headers={"content-type": "image/png"},
        timeout=30,
    )
    assert r.status_code == 200 and top1(r.json()["results"][0])["label"] in CATS
    # A phone photo stored sideways with EXIF orientation 6 must be turned upright first.
    sideways = np.ascontiguousarray(np.rot90(cat, k=1))
    exif = Image.Exif()
    exif[0x0112] = 6
    r = classify(server, jpeg_bytes(sideways, exif=exif.tobytes()), top_k=1)
    assert top1(r.json()["results"][0])["label"] in CATS


def test_concurrent_clients_are_batched(server: LiveServer, photos: dict[str, bytes]) -> None:
    before = httpx.get(server.url + "/v2/models/mobilenet_v2/stats").json()["model_stats"][0]
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: classify(server, photos["coffee"], top_k=1), range(24)))
    assert all(top1(r.json()["results"][0])["label"] == "espresso" for r in replies)
    after = httpx.get(server.url + "/v2/models/mobilenet_v2/stats").json()["model_stats"][0]
    rows = after["inference_count"] - before["inference_count"]
    calls = after["execution_count"] - before["execution_count"]
    assert rows == 24 and calls < 24  # some requests shared an ONNX Runtime call
    metrics = httpx.get(server.url + "/metrics").text
    assert (
        'fovea_requests_total{endpoint="/v1/classify",model="mobilenet_v2",status="200"}' in metrics
    )
    assert "fovea_batch_size_bucket" in metrics and "fovea_queue_duration_seconds" in metrics


def _truncated(photos: dict[str, bytes]) -> bytes:
    return photos["chelsea"][: len(photos["chelsea"]) // 2]


def _huge_png() -> bytes:
    """A valid PNG claiming 30000x30000 pixels: rejected from its header, never decoded."""
    buf = io.BytesIO()
    Image.new("L", (30000, 30000)).save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("make", "params", "status", "code"),
    [
        (lambda p: b"not an image at all", {}, 415, "unsupported_media_type"),
        (_truncated, {}, 400, "invalid_image"),
        (lambda p: b"", {}, 400, "empty_image"),
        (lambda p: _huge_png(), {}, 413, "image_too_large"),
        (lambda p: p["coffee"], {"model": "nope"}, 404, "model_not_found"),
        (lambda p: p["coffee"], {"version": 7}, 404, "version_not_found"),
        (lambda p: p["coffee"], {"top_k": 0}, 422, "validation_error"),
        (lambda p: p["coffee"], {"top_kk": 3}, 422, "validation_error"),
    ],
    ids=["not-image", "truncated", "empty", "huge", "model", "version", "top_k", "unknown-option"],
)
def test_bad_uploads_get_4xx_and_server_keeps_serving(
    server: LiveServer, photos: dict[str, bytes], make, params, status, code
) -> None:
    r = classify(server, make(photos), **params)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code and r.json()["error"]
    ok = classify(server, photos["coffee"], top_k=1)
    assert ok.status_code == 200 and top1(ok.json()["results"][0])["label"] == "espresso"


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "malformed_body",
        ),
        ({"json": {"images": "abc"}}, 400, "missing_image"),
        ({"json": {"images": ["%%%"]}}, 400, "invalid_base64"),
        ({"json": {"pictures": []}}, 400, "missing_image"),
        (
            {"content": b"hello", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
    ],
    ids=["bad-json", "images-not-list", "bad-base64", "no-images", "text-plain"],
)
def test_bad_request_bodies(server: LiveServer, kwargs: dict, status: int, code: str) -> None:
    r = httpx.post(server.url + "/v1/classify", timeout=30, **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code


def test_body_over_the_limit_is_413(server: LiveServer) -> None:
    limit = server.settings.max_upload_bytes
    r = httpx.post(
        server.url + "/v1/classify",
        content=b"\xff" * (limit + 1),
        headers={"content-type": "image/jpeg"},
        timeout=30,
    )
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


def test_unknown_route_is_json_404(server: LiveServer) -> None:
    r = httpx.get(server.url + "/v1/nothing-here")
    assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_models_listing_and_health(server: LiveServer) -> None:
    models = httpx.get(server.url + "/v1/models").json()["models"]
    entry = next(m for m in models if m["name"] == "mobilenet_v2")
    assert entry["state"] == "ready" and entry["task"] == "classification"
    assert entry["versions"]["1"]["providers"][-1] == "CPUExecutionProvider"
    assert entry["config"]["card"]["reproduce"].startswith("fovea export")
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/readyz").status_code == 200
    assert "/v1/classify" in httpx.get(server.url + "/openapi.json").json()["paths"]


def test_deadline_exceeded_is_504(server: LiveServer, photos: dict[str, bytes]) -> None:
    r = classify(server, photos["coffee"], timeout_ms=0.001)
    assert r.status_code == 504 and r.json()["code"] == "deadline_exceeded"
    assert classify(server, photos["coffee"]).status_code == 200
