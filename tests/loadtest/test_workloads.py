"""Request bodies built by the workloads, checked by parsing them back."""

from __future__ import annotations

import asyncio
import base64
import email.parser
import json
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from loadtest import payloads, tensors
from loadtest.errors import LoadTestError
from loadtest.transport import Client, PreparedRequest
from loadtest.workloads import WORKLOADS, WorkloadOptions

PHOTOS = payloads.sample_photos(("chelsea", "coffee"))
UNUSED = Client("http://127.0.0.1:9", connections=1, timeout_s=1)  # image tasks never call it


def prepare(name: str, **options: object) -> list[PreparedRequest]:
    workload = WORKLOADS[name](WorkloadOptions(photos=PHOTOS, **options))  # type: ignore[arg-type]
    return asyncio.run(workload.prepare(UNUSED))


def multipart_files(request: PreparedRequest) -> list[bytes]:
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = email.parser.BytesParser().parsebytes(head + request.body)
    return [part.get_payload(decode=True) for part in message.get_payload()]


def test_multipart_carries_the_photos_and_options_in_the_query() -> None:
    requests = prepare("classify", batch=2, params={"top_k": 3}, model="m")
    assert len(requests) == 2 and all(r.images == 2 for r in requests)
    assert multipart_files(requests[0]) == [PHOTOS[0].data, PHOTOS[1].data]
    assert multipart_files(requests[1]) == [PHOTOS[1].data, PHOTOS[0].data]
    url = urlsplit(requests[0].path)
    assert url.path == "/v1/classify" and parse_qs(url.query) == {"top_k": ["3"], "model": ["m"]}


def test_json_encoding_sends_base64_and_typed_options() -> None:
    (first, _) = prepare("detect", encoding="json", params={"score_threshold": 0.5})
    doc = json.loads(first.body)
    assert first.path == "/v1/detect" and doc["score_threshold"] == 0.5
    assert [base64.b64decode(b) for b in doc["images"]] == [PHOTOS[0].data]


def test_fixed_image_counts_and_default_options() -> None:
    verify = prepare("faces-verify")
    assert all(r.images == 2 and len(multipart_files(r)) == 2 for r in verify)
    (vqa, _) = prepare("vqa", params={"question": "what colour?"})
    assert parse_qs(urlsplit(vqa.path).query)["question"] == ["what colour?"]
    assert "question" in parse_qs(urlsplit(prepare("vqa")[0].path).query)
    with pytest.raises(LoadTestError, match="drop --batch"):
        prepare("vqa", batch=4)


def test_v2_shapes_and_photo_tensors() -> None:
    spec = {"name": "pixels", "datatype": "FP32", "shape": [-1, 3, 32, 48]}
    shape = tensors.resolve_shape(spec, 2, {})
    x = tensors.make_input(spec, shape, PHOTOS, np.random.default_rng(0))
    assert x.shape == (2, 3, 32, 48) and x.dtype == np.float32 and 0 <= x.min() < x.max() <= 1
    assert not np.array_equal(x[0], x[1])  # two different photos
    with pytest.raises(ValueError, match="--shape tokens=2,D"):
        tensors.resolve_shape({"name": "tokens", "datatype": "INT64", "shape": [-1, -1]}, 2, {})
    ids = tensors.make_input({"name": "t", "datatype": "INT64", "shape": [-1, 5]}, [2, 5], PHOTOS,
                             np.random.default_rng(0))
    assert ids.dtype == np.int64 and ids.shape == (2, 5)


def test_v2_binary_body_layout() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([[1], [2]], dtype=np.int64)
    body, header_len = tensors.binary_body({"a": a, "b": b}, {"a": "FP32", "b": "INT64"}, ["y"])
    header = json.loads(body[:header_len])
    sizes = [i["parameters"]["binary_data_size"] for i in header["inputs"]]
    assert sizes == [a.nbytes, b.nbytes] and len(body) == header_len + sum(sizes)
    first = np.frombuffer(body[header_len : header_len + a.nbytes], np.float32)
    assert np.array_equal(first, a.ravel())
    assert header["outputs"] == [{"name": "y", "parameters": {"binary_data": True}}]
    doc = json.loads(tensors.json_body({"a": a}, {"a": "FP32"}))
    assert doc["inputs"][0]["data"] == a.ravel().tolist() and doc["inputs"][0]["shape"] == [2, 3]
