"""Mutated tensors sent to real models over v2: every one a 400 that names the input, no 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import orjson
import pytest
import yaml
from onnx import TensorProto, helper

from tests.conftest import MODEL_STORE
from tests.models import CARD
from tests.server import LiveServer


@pytest.fixture(scope="module")
def srv() -> Iterator[LiveServer]:
    models = ["mtcnn", "mtcnn_rnet", "mtcnn_onet", "captioner_decoder", "vqa", "vqa_encoder"]
    with LiveServer(MODEL_STORE, load_models=models) as server:
        yield server


def tensor(name: str, datatype: str, shape: list[int], data: Any) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def decoder_inputs(token: Any, datatype: str = "INT64") -> list[dict[str, Any]]:
    zeros = [0.0]
    return [
        tensor("token", datatype, [1], [token]),
        tensor("h", "FP32", [1, 384], zeros * 384),
        tensor("c", "FP32", [1, 384], zeros * 384),
        tensor("features", "FP32", [1, 49, 256], zeros * 49 * 256),
        tensor("keys", "FP32", [1, 49, 256], zeros * 49 * 256),
    ]


def vqa_inputs(tokens: list[Any], length: Any) -> list[dict[str, Any]]:
    return [
        tensor("image_vector", "FP32", [1, 1280], [0.0] * 1280),
        tensor("tokens", "INT64", [1, 16], tokens),
        tensor("lengths", "INT64", [1], [length]),
    ]


SMALL = [1, 3, 12, 12]
CASES = {
    "mtcnn 2x2 image": ("mtcnn", [tensor("pixels", "FP32", [1, 3, 2, 2], [0.0] * 12)], "pixels"),
    "mtcnn 0x5 image": ("mtcnn", [tensor("pixels", "FP32", [1, 3, 0, 5], [])], "pixels"),
    "mtcnn 11x40 image": (
        "mtcnn",
        [tensor("pixels", "FP32", [1, 3, 11, 40], [0.0] * 3 * 11 * 40)],
        "pixels",
    ),
    "token 1e38 (overflows int64)": ("captioner_decoder", decoder_inputs(1e38), "token"),
    "token 1e6 (outside the vocabulary)": ("captioner_decoder", decoder_inputs(10**6), "token"),
    "token -1": ("captioner_decoder", decoder_inputs(-1), "token"),
    "token int64 max": ("captioner_decoder", decoder_inputs(2**63 - 1), "token"),
    "token as a string": ("captioner_decoder", decoder_inputs("5"), "token"),
    "token 2.5": ("captioner_decoder", decoder_inputs(2.5), "token"),
    "vqa token out of range": ("vqa", vqa_inputs([10**6] * 16, 3), "tokens"),
    "vqa length 17 of 16": ("vqa", vqa_inputs([1] * 16, 17), "lengths"),
    "vqa length 1e9": ("vqa", vqa_inputs([1] * 16, 10**9), "lengths"),
    "NaN as a string": (
        "mtcnn",
        [tensor("pixels", "FP32", [1, 3, 12, 12], ["NaN"] * 432)],
        "pixels",
    ),
    "FP32 overflow to inf": (
        "mtcnn",
        [tensor("pixels", "FP32", [1, 3, 12, 12], [1e39] * 432)],
        "pixels",
    ),
    "ragged data": (
        "mtcnn",
        [tensor("pixels", "FP32", [1, 3, 12, 12], [[1.0], [1.0, 2.0]])],
        "pixels",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_mutated_tensor_is_a_400_naming_the_input(srv: LiveServer, case: str) -> None:
    model, inputs, name = CASES[case]
    r = httpx.post(srv.url + f"/v2/models/{model}/infer", json={"inputs": inputs}, timeout=30)
    assert r.status_code == 400, r.text
    assert repr(name) in r.json()["error"], r.json()


def test_binary_token_out_of_range_is_a_400(srv: LiveServer) -> None:
    token = np.array([10**6], dtype=np.int64).tobytes()
    inputs = decoder_inputs(0)
    header = {
        "inputs": [
            {
                **{k: v for k, v in inputs[0].items() if k != "data"},
                "parameters": {"binary_data_size": 8},
            },
            *inputs[1:],
        ]
    }
    head = orjson.dumps(header)
    r = httpx.post(
        srv.url + "/v2/models/captioner_decoder/infer",
        content=head + token,
        headers={"Inference-Header-Content-Length": str(len(head))},
        timeout=30,
    )
    assert r.status_code == 400 and "'token'" in r.json()["error"]


def test_valid_requests_still_run(srv: LiveServer) -> None:
    r = httpx.post(
        srv.url + "/v2/models/captioner_decoder/infer", json={"inputs": decoder_inputs(55)}
    )
    assert r.status_code == 200
    log_probs = np.asarray(r.json()["outputs"][0]["data"])
    assert log_probs.shape == (56,) and np.isfinite(log_probs).all()
    small = [tensor("pixels", "FP32", [1, 3, 12, 12], [0.5] * 432)]
    assert httpx.post(srv.url + "/v2/models/mtcnn/infer", json={"inputs": small}).status_code == 200


def test_onnx_runtime_invalid_argument_is_a_400(tmp_path: Path) -> None:
    """A model whose config declares no minimum size: ORT's own refusal becomes a 400."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 1, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 1, "oh", "ow"])
    k = helper.make_tensor("k", TensorProto.FLOAT, [1, 1, 5, 5], [1.0] * 25)
    graph = helper.make_graph([helper.make_node("Conv", ["x", "k"], ["y"])], "c", [x], [y], [k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (tmp_path / "conv" / "1").mkdir(parents=True)
    onnx.save(model, tmp_path / "conv" / "1" / "model.onnx")
    config = {
        "name": "conv",
        "task": "tensor",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 1, -1, -1]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 1, -1, -1]}],
        "runtime": {"providers": ["CPUExecutionProvider"], "warmup_batch_sizes": [1]},
        "card": CARD,
    }
    (tmp_path / "conv" / "config.yaml").write_text(yaml.safe_dump(config))
    with LiveServer(tmp_path) as srv:
        tiny = {"inputs": [tensor("x", "FP32", [1, 1, 2, 2], [1.0] * 4)]}
        r = httpx.post(srv.url + "/v2/models/conv/infer", json=tiny)
        assert r.status_code == 400 and r.json()["code"] == "invalid_input"
        assert "x [1, 1, 2, 2]" in r.json()["error"]
        ok = {"inputs": [tensor("x", "FP32", [1, 1, 5, 5], [1.0] * 25)]}
        r = httpx.post(srv.url + "/v2/models/conv/infer", json=ok)
        assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [25.0]
