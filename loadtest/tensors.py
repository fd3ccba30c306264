"""Open Inference Protocol v2 inputs made from a model's metadata, and their request bodies.

Inputs shaped like images (``[N, 3, H, W]`` or ``[N, H, W, 3]``) get real photos resized to fit
and scaled to [0, 1] (``UINT8``: raw pixels); any other input gets seeded random values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from PIL import Image

from loadtest.payloads import Photo

DTYPES: dict[str, type[np.generic]] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


def resolve_shape(spec: dict[str, Any], batch: int, overrides: dict[str, list[int]]) -> list[int]:
    """The concrete shape to send: the batch axis from ``batch``, others from ``--shape``."""
    name = spec["name"]
    if name in overrides:
        return list(overrides[name])
    shape = [int(d) for d in spec["shape"]]
    if shape and shape[0] == -1:
        shape[0] = batch
    if any(d < 0 for d in shape):
        raise ValueError(
            f"input {name!r} has dynamic axes {spec['shape']}: give them with "
            f"--shape {name}=" + ",".join(str(batch) if i == 0 else "D" for i in range(len(shape)))
        )
    return shape


def make_input(
    spec: dict[str, Any], shape: list[int], photos: list[Photo], rng: np.random.Generator
) -> np.ndarray:
    datatype = spec["datatype"]
    if datatype not in DTYPES:
        raise ValueError(f"input {spec['name']!r} has datatype {datatype}, which is not supported")
    dtype = np.dtype(DTYPES[datatype])
    if _image_like(shape) and datatype in ("FP32", "FP16", "UINT8"):
        return _photo_batch(shape, photos, dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 10, size=shape, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


def _image_like(shape: list[int]) -> bool:
    return len(shape) == 4 and (shape[1] == 3 or shape[3] == 3) and min(shape[1:]) > 0


def _photo_batch(shape: list[int], photos: list[Photo], dtype: np.dtype) -> np.ndarray:
    channels_first = shape[1] == 3
    height, width = (shape[2], shape[3]) if channels_first else (shape[1], shape[2])
    rows = []
    for i in range(shape[0]):
        img = Image.fromarray(photos[i % len(photos)].pixels()).resize((width, height))
        pixels = np.asarray(img)
        rows.append(pixels.transpose(2, 0, 1) if channels_first else pixels)
    batch = np.stack(rows)
    return batch if dtype == np.uint8 else (batch / 255.0).astype(dtype)


def json_body(inputs: dict[str, np.ndarray], datatypes: dict[str, str]) -> bytes:
    doc = {
        "inputs": [
            {"name": n, "shape": list(a.shape), "datatype": datatypes[n], "data": a.ravel()}
            for n, a in inputs.items()
        ]
    }
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def binary_body(
    inputs: dict[str, np.ndarray], datatypes: dict[str, str], outputs: list[str]
) -> tuple[bytes, int]:
    """The binary tensor extension: JSON header, then raw tensors; outputs asked back as binary."""
    blobs = [np.ascontiguousarray(a).tobytes() for a in inputs.values()]
    doc = {
        "inputs": [
            {
                "name": n,
                "shape": list(a.shape),
                "datatype": datatypes[n],
                "parameters": {"binary_data_size": len(blob)},
            }
            for (n, a), blob in zip(inputs.items(), blobs, strict=True)
        ],
        "outputs": [{"name": o, "parameters": {"binary_data": True}} for o in outputs],
    }
    header = orjson.dumps(doc)
    return header + b"".join(blobs), len(header)
