"""The v2 tensor codec on its own: JSON and binary tensors in, outputs back, bad input named."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from serving.core.config import TensorSpec
from serving.errors import BadRequest
from serving.http.v2_codec import encode_infer_response, parse_infer_request

X = [TensorSpec(name="x", datatype="FP32", shape=[-1, 2])]
Y = [TensorSpec(name="y", datatype="FP32", shape=[-1, 2])]


def test_json_tensor_round_trip() -> None:
    body = orjson.dumps(
        {"id": "r1", "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 2],
                                 "data": [1, 2, 3, 4]}]}
    )
    req = parse_infer_request(body, None, X, Y)
    assert req.id == "r1" and req.outputs is None
    np.testing.assert_array_equal(req.inputs["x"], [[1, 2], [3, 4]])
    out, header = encode_infer_response("m", 1, req.id, {"y": req.inputs["x"] * 2}, set())
    assert header is None
    doc = orjson.loads(out)
    assert doc["model_version"] == "1" and doc["id"] == "r1"
    assert doc["outputs"][0]["data"] == [2, 4, 6, 8] and doc["outputs"][0]["shape"] == [2, 2]


def test_binary_tensor_extension_both_ways() -> None:
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    header = orjson.dumps(
        {
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 2],
                        "parameters": {"binary_data_size": x.nbytes}}],
            "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
        }
    )
    req = parse_infer_request(header + x.tobytes(), str(len(header)), X, Y)
    np.testing.assert_array_equal(req.inputs["x"], x)
    assert req.binary_outputs == {"y"}
    body, length = encode_infer_response("m", 1, None, {"y": x}, req.binary_outputs)
    assert length is not None
    np.testing.assert_array_equal(np.frombuffer(body[length:], np.float32).reshape(3, 2), x)


@pytest.mark.parametrize(
    ("item", "code"),
    [
        ({"name": "x", "datatype": "INT64", "shape": [1, 2], "data": [1, 2]}, "invalid_datatype"),
        ({"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}, "invalid_shape"),
        ({"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1]}, "invalid_shape"),
        ({"name": "z", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}, "invalid_input"),
        ({"name": "x", "datatype": "FP32", "shape": [1, 2]}, "malformed_body"),
    ],
)
def test_bad_tensors_are_named_400s(item: dict, code: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_infer_request(orjson.dumps({"inputs": [item]}), None, X, Y)
    assert err.value.code == code and item["name"] in err.value.message
