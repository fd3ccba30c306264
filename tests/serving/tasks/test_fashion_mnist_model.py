"""The shipped Fashion-MNIST classifier (trained by ``fovea train classifier``) served for real:
its own feature-map size for CAM, and its test-set accuracy on a sample when Debian's
``dataset-fashion-mnist`` is installed."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import MODEL_STORE
from tests.server import LiveServer


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer(MODEL_STORE, load_models=["fashion_mnist"]) as srv:
        yield srv


def test_explains_with_its_3x3_map(server: LiveServer) -> None:
    trouser = np.zeros((28, 28), np.uint8)
    trouser[2:26, 9:13] = trouser[2:26, 15:19] = trouser[2:6, 9:19] = 200
    r = httpx.post(
        server.url + "/v1/classify",
        params={"model": "fashion_mnist", "top_k": 1, "explain": "cam"},
        files=[("image", ("t.png", png(trouser), "image/png"))],
        timeout=30,
    )
    assert r.status_code == 200, r.text
    (top,) = r.json()["results"][0]["predictions"]
    assert np.array(top["cam"]["grid"]).shape == (3, 3)
    x1, y1, x2, y2 = top["cam"]["box"]
    assert 0 <= x1 < x2 <= 28 and 0 <= y1 < y2 <= 28


def test_sample_of_the_official_test_set(server: LiveServer) -> None:
    from export.train_folder import fashion_mnist

    if not (fashion_mnist.SOURCE / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    images, labels = fashion_mnist.load("test")
    files = [("image", (f"{i}.png", png(images[i]), "image/png")) for i in range(64)]
    r = httpx.post(
        server.url + "/v1/classify",
        params={"model": "fashion_mnist", "top_k": 1},
        files=files,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    got = [res["predictions"][0]["label"] for res in r.json()["results"]]
    want = [fashion_mnist.CLASSES[i] for i in labels[:64]]
    accuracy = np.mean(np.array(got) == np.array(want))
    assert accuracy >= 0.8  # the card's full-test-set figure is 0.9022
