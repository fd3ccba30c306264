"""``/v1/segment`` over real HTTP with the shipped shape segmenter."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from export.scenes.coco import semantic_mask
from export.scenes.shapes import CLASSES
from serving.imaging.segmentation import rle_decode
from tests.conftest import MODEL_STORE
from tests.server import LiveServer
from tests.serving.tasks.scenes import scenes, upload

MODEL = "shapes_segmenter"
MIN_MEAN_IOU = 0.5  # shape classes present, pooled over 12 scenes; measured 0.57
pytestmark = pytest.mark.skipif(
    not (MODEL_STORE / MODEL / "1" / "model.onnx").is_file(), reason="segmenter not exported"
)


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer(MODEL_STORE, load_models=[MODEL]) as srv:
        yield srv


def segment(srv: LiveServer, *images: bytes, **params: object) -> httpx.Response:
    files = [("image", (f"img{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]
    return httpx.post(srv.url + "/v1/segment", files=files, params=params, timeout=60)


def truth(scene) -> np.ndarray:
    s = scene.scene
    return semantic_mask(s.height, s.width, [o.category_id for o in s.objects], scene.masks)


def test_rle_masks_match_ground_truth(server: LiveServer) -> None:
    composed = scenes(12)
    r = segment(server, *(upload(s) for s in composed))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["labels"] == ["background", *CLASSES]
    hits = np.zeros(len(CLASSES) + 1)
    union = np.zeros(len(CLASSES) + 1)
    for scene, result in zip(composed, body["results"], strict=True):
        expected = truth(scene)
        predicted = np.zeros_like(expected)
        for label, rle in result["masks"].items():
            mask = rle_decode(rle)
            assert mask.shape == expected.shape
            predicted[mask] = body["labels"].index(label)
        fractions = {c["label"]: c["fraction"] for c in result["classes"]}
        assert sum(fractions.values()) == pytest.approx(1.0)
        assert fractions.get("background", 0) == pytest.approx((predicted == 0).mean(), abs=1e-6)
        for k in range(1, len(CLASSES) + 1):
            hits[k] += ((predicted == k) & (expected == k)).sum()
            union[k] += ((predicted == k) | (expected == k)).sum()
    present = union > 0
    mean_iou = (hits[present] / union[present]).mean()
    assert mean_iou >= MIN_MEAN_IOU, f"mean IoU {mean_iou:.3f}"


def test_png_mask_agrees_with_rle(server: LiveServer) -> None:
    image = upload(scenes(2)[1])
    as_rle = segment(server, image).json()["results"][0]
    as_png = segment(server, image, mask_format="png").json()
    result = as_png["results"][0]
    assert "masks" not in result
    classes = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["mask_png"]))))
    assert classes.shape == (result["height"], result["width"])
    for label, rle in as_rle["masks"].items():
        np.testing.assert_array_equal(rle_decode(rle), classes == as_png["labels"].index(label))


def test_render_and_real_photo(server: LiveServer, photos: dict[str, bytes]) -> None:
    r = httpx.post(
        server.url + "/v1/segment",
        json={"images": [base64.b64encode(photos["astronaut"]).decode()], "render": True},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    result = r.json()["results"][0]
    assert (result["width"], result["height"]) == (512, 512)
    assert sum(c["fraction"] for c in result["classes"]) == pytest.approx(1.0)
    img = Image.open(io.BytesIO(base64.b64decode(result["rendered_png"])))
    assert img.format == "PNG" and img.size == (512, 512)


@pytest.mark.parametrize(
    ("params", "data", "status", "code"),
    [
        ({}, "truncated", 400, "invalid_image"),
        ({}, b"\x00\x01", 415, "unsupported_media_type"),
        ({"mask_format": "gif"}, None, 422, "validation_error"),
        ({"model": "shapes_detector"}, None, 404, "model_not_found"),
    ],
)
def test_bad_requests(
    server: LiveServer, params: dict, data: bytes | str | None, status: int, code: str
) -> None:
    image = upload(scenes(1)[0])
    if data == "truncated":
        image = image[: len(image) // 2]
    elif data is not None:
        image = data
    r = segment(server, image, **params)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
