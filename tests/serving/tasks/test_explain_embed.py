"""``/v1/classify?explain=cam`` and ``/v1/embed`` over real HTTP with the shipped MobileNetV2,
and the same tensors through v2."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from PIL import Image

from tests.conftest import MODEL_STORE
from tests.server import LiveServer


def post(srv: LiveServer, path: str, *images: bytes, **params: object) -> httpx.Response:
    files = [("image", (f"img{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]
    return httpx.post(srv.url + path, files=files, params=params, timeout=60)


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_explain_cam_gives_grids_boxes_and_png(
    server: LiveServer, photos: dict[str, bytes]
) -> None:
    r = post(server, "/v1/classify", photos["chelsea"], photos["coffee"], top_k=2,
             explain="cam", explain_png="true")  # fmt: skip
    assert r.status_code == 200, r.text
    cat, coffee = r.json()["results"]
    for result, size in ((cat, (451, 300)), (coffee, (600, 400))):
        for label in result["predictions"]:
            grid = np.array(label["cam"]["grid"])
            assert grid.shape == (7, 7) and grid.min() == 0.0 and grid.max() == 1.0
            x1, y1, x2, y2 = label["cam"]["box"]
            assert 0 <= x1 < x2 <= size[0] and 0 <= y1 < y2 <= size[1]
        png = Image.open(io.BytesIO(base64.b64decode(result["explain_png"])))
        assert png.format == "PNG" and png.size == size
    # the card's measured localisation of chelsea, reproduced through the HTTP path
    card = yaml.safe_load((MODEL_STORE / "mobilenet_v2" / "config.yaml").read_text())["card"]
    chelsea = card["metrics"]["cam_localisation"]["chelsea"]
    top = cat["predictions"][0]
    assert top["label"] == "Egyptian cat"
    assert iou(top["cam"]["box"], chelsea["hand_box"]) == pytest.approx(chelsea["iou"], abs=0.05)


def test_plain_classify_has_no_explanation(server: LiveServer, photos: dict[str, bytes]) -> None:
    r = post(server, "/v1/classify", photos["coffee"], top_k=1)
    (result,) = r.json()["results"]
    assert "cam" not in result["predictions"][0] and "explain_png" not in result


@pytest.mark.parametrize(
    ("params", "status"),
    [({"explain": "gradcam"}, 422), ({"explain_png": "true"}, 422)],
)
def test_bad_explain_options(
    server: LiveServer, photos: dict[str, bytes], params: dict, status: int
) -> None:
    r = post(server, "/v1/classify", photos["coffee"], **params)
    assert r.status_code == status and "error" in r.json() and "code" in r.json()


def test_embed_is_unit_and_separates_photos(server: LiveServer, photos: dict[str, bytes]) -> None:
    r = post(server, "/v1/embed", photos["chelsea"], photos["coffee"], photos["chelsea"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "mobilenet_v2" and body["dimension"] == 1280
    vectors = np.array([x["embedding"] for x in body["results"]])
    assert vectors.shape == (3, 1280)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[2]) > 0.999
    assert float(vectors[0] @ vectors[1]) < 0.9


def test_embed_through_v2_features_output(server: LiveServer, photos: dict[str, bytes]) -> None:
    """v2 clients get the same tensors: ``features`` (and ``feature_map``) by name."""
    from serving.core.config import load_config
    from serving.imaging.preprocess import ImagePreprocessor

    pre = load_config(MODEL_STORE / "mobilenet_v2" / "config.yaml").preprocess
    assert pre is not None
    pixels = ImagePreprocessor(pre, max_pixels=10**8)(photos["coffee"]).tensor[None]
    body = {
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": list(pixels.shape),
                    "data": pixels.ravel().tolist()}],
        "outputs": [{"name": "features"}, {"name": "feature_map"}],
    }  # fmt: skip
    r = httpx.post(server.url + "/v2/models/mobilenet_v2/infer", json=body, timeout=60)
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json()["outputs"]}
    assert out["feature_map"]["shape"] == [1, 1280, 7, 7]
    features = np.array(out["features"]["data"], dtype=np.float32)
    fmap = np.array(out["feature_map"]["data"], dtype=np.float32).reshape(1280, 49)
    np.testing.assert_allclose(features, fmap.mean(axis=1), atol=1e-4)
    via_embed = post(server, "/v1/embed", photos["coffee"]).json()["results"][0]["embedding"]
    np.testing.assert_allclose(features / np.linalg.norm(features), via_embed, atol=1e-5)


def copy_model(store: Path, name: str, drop: tuple[str, ...] = ()) -> Path:
    """The shipped MobileNetV2 under another name (ONNX linked, not copied)."""
    source = MODEL_STORE / "mobilenet_v2"
    folder = store / name
    (folder / "1").mkdir(parents=True)
    (folder / "1" / "model.onnx").symlink_to(source / "1" / "model.onnx")
    for side in ("labels.txt", "classifier.npy"):
        (folder / side).symlink_to(source / side)
    config = yaml.safe_load((source / "config.yaml").read_text())
    config.update(name=name, default_for_task=False)
    for key in drop:
        config.pop(key)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def test_models_without_or_with_unfit_explain_data(
    tmp_path: Path, photos: dict[str, bytes]
) -> None:
    copy_model(tmp_path, "plain", drop=("embedding", "explain"))
    bad = copy_model(tmp_path, "bad_weights")
    (bad / "classifier.npy").unlink()
    np.save(bad / "classifier.npy", np.zeros((10, 1280), np.float32))
    with LiveServer(tmp_path) as srv:
        r = post(srv, "/v1/embed", photos["coffee"], model="plain")
        assert r.status_code == 400 and r.json()["code"] == "embedding_unsupported"
        r = post(srv, "/v1/classify", photos["coffee"], model="plain", explain="cam")
        assert r.status_code == 400 and r.json()["code"] == "explain_unsupported"
        assert post(srv, "/v1/classify", photos["coffee"], model="plain").status_code == 200
        info = httpx.get(srv.url + "/v1/models/bad_weights", timeout=10).json()
        assert info["state"] == "failed" and "classifier.npy" in info["reason"]
