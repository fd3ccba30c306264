"""Open Inference Protocol v2, driven by the stock tritonclient HTTP client."""

from __future__ import annotations

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import MODEL_STORE
from tests.server import LiveServer

th = pytest.importorskip("tritonclient.http")
InferenceServerException = pytest.importorskip("tritonclient.utils").InferenceServerException


@pytest.fixture(scope="module")
def client(server: LiveServer):
    return th.InferenceServerClient(server.url.removeprefix("http://"))


@pytest.fixture(scope="module")
def reference() -> ort.InferenceSession:
    return ort.InferenceSession(
        str(MODEL_STORE / "mobilenet_v2/1/model.onnx"), providers=["CPUExecutionProvider"]
    )


def pixels(n: int) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((n, 3, 224, 224), dtype=np.float32)


def test_health_and_metadata(client) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("mobilenet_v2") and client.is_model_ready("mobilenet_v2", "1")
    meta = client.get_model_metadata("mobilenet_v2")
    assert meta["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 3, 224, 224]}]
    assert meta["versions"] == ["1"]
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    config = client.get_model_config("mobilenet_v2")
    assert config["max_batch_size"] == 32 and config["input"][0]["dims"] == [3, 224, 224]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_matches_onnxruntime(client, reference, binary: bool) -> None:
    x = pixels(3)
    inp = th.InferInput("pixels", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    out = th.InferRequestedOutput("logits", binary_data=binary)
    result = client.infer("mobilenet_v2", [inp], outputs=[out], model_version="1", request_id="r1")
    logits = result.as_numpy("logits")
    expected = reference.run(["logits"], {"pixels": x})[0]
    assert logits.shape == (3, 1000)
    assert np.max(np.abs(logits - expected)) < 1e-4
    assert result.get_response()["id"] == "r1"


def test_statistics_count_inferences(client) -> None:
    stats = client.get_inference_statistics("mobilenet_v2")["model_stats"][0]
    assert stats["name"] == "mobilenet_v2" and stats["inference_count"] >= 6
    assert stats["inference_stats"]["success"]["count"] == stats["inference_count"]
    assert (
        sum(b["compute_infer"]["count"] for b in stats["batch_stats"]) == stats["execution_count"]
    )


@pytest.mark.parametrize(
    ("shape", "dtype", "message"),
    [
        ([1, 3, 224, 225], "FP32", "expects"),
        ([1, 3, 224, 224], "FP64", "datatype FP64"),
        ([3, 224, 224], "FP32", "expects"),
    ],
    ids=["wrong-shape", "wrong-dtype", "missing-batch-axis"],
)
def test_bad_tensors_get_400(client, shape: list[int], dtype: str, message: str) -> None:
    x = np.zeros(shape, dtype=np.float64 if dtype == "FP64" else np.float32)
    inp = th.InferInput("pixels", shape, dtype)
    inp.set_data_from_numpy(x, binary_data=True)
    with pytest.raises(InferenceServerException, match=message) as err:
        client.infer("mobilenet_v2", [inp])
    assert err.value.status() == "400"
    assert client.is_model_ready("mobilenet_v2")


def test_raw_protocol_errors(server: LiveServer) -> None:
    url = server.url + "/v2/models/mobilenet_v2/infer"
    cases = [
        (httpx.post(url, content=b"{nope"), 400),
        (
            httpx.post(
                url,
                json={"inputs": [{"name": "other", "shape": [1], "datatype": "FP32", "data": [1]}]},
            ),
            400,
        ),
        (
            httpx.post(
                url,
                json={
                    "inputs": [
                        {
                            "name": "pixels",
                            "shape": [1, 3, 224, 224],
                            "datatype": "FP32",
                            "data": [1, 2, 3],
                        }
                    ]
                },
            ),
            400,
        ),
        (
            httpx.post(
                url,
                json={
                    "inputs": [
                        {
                            "name": "pixels",
                            "shape": [1, 3, 224, 224],
                            "datatype": "FP32",
                            "parameters": {"binary_data_size": 602112},
                        }
                    ]
                },
                headers={"Inference-Header-Content-Length": "1"},
            ),
            400,
        ),
        (httpx.post(server.url + "/v2/models/ghost/infer", json={"inputs": []}), 404),
        (httpx.get(server.url + "/v2/models/mobilenet_v2/versions/9"), 404),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]
