"""Open Inference Protocol v2 tensors: JSON and the binary tensor data extension.

A binary request is ``<JSON header><raw tensor bytes...>``, the header's length given by the
``Inference-Header-Content-Length`` HTTP header; each binary input names its byte count in
``parameters.binary_data_size``, and the blobs follow in input order. Responses mirror that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from serving.core.config import TensorSpec
from serving.core.datatypes import NUMPY_TO_V2, V2_TO_NUMPY
from serving.errors import BadRequest

HEADER_LENGTH = "inference-header-content-length"


@dataclass
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: list[str] | None  # None: all outputs
    binary_outputs: set[str]


def parse_infer_request(
    body: bytes, header_length: str | None, inputs: list[TensorSpec], outputs: list[TensorSpec]
) -> InferRequest:
    json_part, blobs = _split(body, header_length)
    try:
        doc = orjson.loads(json_part)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"invalid JSON in inference request: {exc}", code="malformed_body"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        raise BadRequest("inference request needs an 'inputs' list", code="malformed_body")
    specs = {s.name: s for s in inputs}
    tensors: dict[str, np.ndarray] = {}
    offset = 0
    for item in doc["inputs"]:
        if not isinstance(item, dict) or "name" not in item:
            raise BadRequest("each input needs a 'name'", code="malformed_body")
        name = item["name"]
        if name not in specs:
            raise BadRequest(
                f"unexpected input {name!r}; model inputs are {sorted(specs)}", code="invalid_input"
            )
        if name in tensors:
            raise BadRequest(f"input {name!r} given twice", code="invalid_input")
        tensor, used = _tensor(item, specs[name], blobs, offset)
        tensors[name] = tensor
        offset += used
    missing = sorted(set(specs) - set(tensors))
    if missing:
        raise BadRequest(f"missing inputs {missing}", code="invalid_input")
    if offset != len(blobs):
        raise BadRequest(
            f"{len(blobs) - offset} unclaimed bytes after the binary inputs", code="malformed_body"
        )
    batch = {t.shape[0] for t in tensors.values()}
    if len(batch) != 1:
        raise BadRequest(
            f"inputs disagree on the batch size: {sorted(batch)}", code="invalid_shape"
        )
    wanted, binary = _requested_outputs(doc, {o.name for o in outputs})
    return InferRequest(doc.get("id"), tensors, wanted, binary)


def encode_infer_response(
    model: str,
    version: int,
    request_id: str | None,
    tensors: dict[str, np.ndarray],
    binary: set[str],
) -> tuple[bytes, int | None]:
    """The response body and, when any output is binary, the JSON header's length."""
    outputs, blobs = [], []
    for name, value in tensors.items():
        entry: dict[str, Any] = {
            "name": name,
            "datatype": NUMPY_TO_V2[value.dtype],
            "shape": list(value.shape),
        }
        if name in binary:
            raw = np.ascontiguousarray(value).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            entry["data"] = value.ravel()
        outputs.append(entry)
    doc: dict[str, Any] = {"model_name": model, "model_version": str(version), "outputs": outputs}
    if request_id is not None:
        doc["id"] = request_id
    header = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    try:
        n = int(header_length)
    except ValueError:
        raise BadRequest(
            "Inference-Header-Content-Length must be an integer", code="malformed_body"
        ) from None
    if not 0 < n <= len(body):
        raise BadRequest(
            f"Inference-Header-Content-Length {n} outside the body of {len(body)} bytes",
            code="malformed_body",
        )
    return body[:n], body[n:]


def _tensor(
    item: dict[str, Any], spec: TensorSpec, blobs: bytes, offset: int
) -> tuple[np.ndarray, int]:
    name, datatype, shape = item["name"], item.get("datatype"), item.get("shape")
    if datatype != spec.datatype:
        raise BadRequest(
            f"input {name!r} has datatype {datatype}; the model expects {spec.datatype}",
            code="invalid_datatype",
        )
    if not isinstance(shape, list) or not all(isinstance(d, int) and d > 0 for d in shape):
        raise BadRequest(f"input {name!r} needs a shape of positive integers", code="invalid_shape")
    expected = [d if d > 0 else "any" for d in spec.shape]
    if len(shape) != len(spec.shape) or any(
        want > 0 and have != want for have, want in zip(shape[1:], spec.shape[1:], strict=True)
    ):
        raise BadRequest(
            f"input {name!r} has shape {shape}; the model expects {expected} (first axis: batch)",
            code="invalid_shape",
        )
    if spec.min_shape is not None and any(
        have < least for have, least in zip(shape, spec.min_shape, strict=True)
    ):
        raise BadRequest(
            f"input {name!r} has shape {shape}; the model needs at least {spec.min_shape}",
            code="invalid_shape",
        )
    dtype = V2_TO_NUMPY[spec.datatype]
    count = math.prod(shape)
    size = (item.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size != count * dtype.itemsize:
            raise BadRequest(
                f"input {name!r}: binary_data_size {size} but shape {shape} of "
                f"{datatype} needs {count * dtype.itemsize} bytes",
                code="invalid_shape",
            )
        if offset + size > len(blobs):
            raise BadRequest(f"input {name!r}: binary data truncated", code="malformed_body")
        array = np.frombuffer(blobs, dtype=dtype, count=count, offset=offset).reshape(shape)
        _check_range(name, array, spec)
        return array, size
    if "data" not in item:
        raise BadRequest(
            f"input {name!r} has neither 'data' nor binary_data_size", code="malformed_body"
        )
    array = _from_json(name, item["data"], dtype, datatype)
    if array.size != count:
        raise BadRequest(
            f"input {name!r}: {array.size} values for shape {shape}", code="invalid_shape"
        )
    _check_range(name, array, spec)
    return array.reshape(shape), 0


def _from_json(name: str, data: Any, dtype: np.dtype, datatype: str) -> np.ndarray:
    """JSON numbers -> ``dtype``, refusing strings, non-integers for integer types, values
    the type cannot hold (no silent wrap-around or inf) and non-finite floats."""
    try:
        raw = np.asarray(data)
    except (TypeError, ValueError):
        raise BadRequest(
            f"input {name!r}: data must be a (nested) list of numbers", code="invalid_datatype"
        ) from None
    if raw.size == 0:
        return raw.astype(dtype)
    if raw.dtype.kind not in "biuf" or (dtype.kind != "f" and raw.dtype.kind == "f"):
        kind = "numbers" if dtype.kind == "f" else "integers" if dtype.kind in "iu" else "booleans"
        raise BadRequest(f"input {name!r}: {datatype} data must be {kind}", code="invalid_datatype")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = raw.min(), raw.max()
        if low < info.min or high > info.max:
            raise BadRequest(
                f"input {name!r}: values [{low}, {high}] do not fit {datatype}",
                code="invalid_value",
            )
    with np.errstate(over="ignore", invalid="ignore"):
        array = raw.astype(dtype)
    if dtype.kind == "f" and not np.isfinite(array).all():
        raise BadRequest(
            f"input {name!r}: values must be finite {datatype} numbers", code="invalid_value"
        )
    return array


def _check_range(name: str, array: np.ndarray, spec: TensorSpec) -> None:
    if spec.range is None or array.size == 0:
        return
    low, high = spec.range
    found_low, found_high = array.min(), array.max()
    if not (low <= found_low and found_high <= high):  # NaN fails too
        raise BadRequest(
            f"input {name!r}: values must lie in [{low:g}, {high:g}]; got [{found_low}, "
            f"{found_high}]",
            code="invalid_value",
        )


def _requested_outputs(doc: dict[str, Any], known: set[str]) -> tuple[list[str] | None, set[str]]:
    all_binary = bool((doc.get("parameters") or {}).get("binary_data_output", False))
    requested = doc.get("outputs")
    if not requested:
        return None, set(known) if all_binary else set()
    names, binary = [], set()
    for out in requested:
        name = out.get("name") if isinstance(out, dict) else None
        if name not in known:
            raise BadRequest(
                f"unknown output {name!r}; model outputs are {sorted(known)}", code="invalid_output"
            )
        names.append(name)
        if (out.get("parameters") or {}).get("binary_data", all_binary):
            binary.add(name)
    return names, binary
