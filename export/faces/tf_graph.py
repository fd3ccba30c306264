"""Read the constant tensors out of a frozen TensorFlow ``GraphDef``, without TensorFlow.

A frozen graph is a protobuf: ``GraphDef.node`` (field 1) holds ``NodeDef``s whose ``attr``
map carries each ``Const``'s ``TensorProto``. We decode just those fields from the wire format
(varints and length-delimited records), which is all the weights of a frozen model need.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}  # TF DataType enum
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


@dataclass
class Node:
    name: str = ""
    op: str = ""
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, bytes] = field(default_factory=dict)  # raw AttrValue messages


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def _fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """``(field number, value)`` for each field of one message, in wire order."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == _LEN:
            size, pos = _varint(buf, pos)
            yield number, buf[pos : pos + size]
            pos += size
        elif wire in (_I32, _I64):
            width = 4 if wire == _I32 else 8
            yield number, buf[pos : pos + width]
            pos += width
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def nodes(data: bytes) -> list[Node]:
    """The ``NodeDef``s of a serialized ``GraphDef``."""
    out = []
    for number, value in _fields(memoryview(data)):
        if number != 1 or not isinstance(value, memoryview):
            continue
        node = Node()
        for f, v in _fields(value):
            assert isinstance(v, memoryview)
            if f == 1:
                node.name = bytes(v).decode()
            elif f == 2:
                node.op = bytes(v).decode()
            elif f == 3:
                node.inputs.append(bytes(v).decode())
            elif f == 5:
                entry = dict(_fields(v))
                node.attrs[bytes(entry[1]).decode()] = bytes(entry.get(2, b""))
        out.append(node)
    return out


def tensor(proto: bytes) -> np.ndarray:
    """A ``TensorProto`` (dtype 1, shape 2, tensor_content 4, float_val 5) as an array."""
    dtype, shape, content, values = None, [], b"", []
    for f, v in _fields(memoryview(proto)):
        if f == 1:
            dtype = _DTYPES[int(v)]  # type: ignore[arg-type]
        elif f == 2:
            for g, dim in _fields(v):  # type: ignore[arg-type]
                if g == 2:
                    shape.append(int(dict(_fields(dim)).get(1, 0)))  # type: ignore[arg-type]
        elif f == 4:
            content = bytes(v)  # type: ignore[arg-type]
        elif f == 5 and isinstance(v, memoryview):  # float_val, packed
            values.extend(np.frombuffer(bytes(v), dtype="<f4").tolist())
        elif f == 7:  # int_val, packed varints or one varint
            values.extend(_packed_varints(v) if isinstance(v, memoryview) else [v])
    if dtype is None:
        raise ValueError("TensorProto without dtype")
    if content:
        return np.frombuffer(content, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
    # proto3 drops zeros, and a tensor of one repeated value is stored as that value once
    filled = np.asarray(values or [0], dtype=dtype)
    if filled.size == 1:
        filled = np.full(int(np.prod(shape)), filled[0], dtype=dtype)
    return filled.reshape(shape)


def _packed_varints(buf: memoryview) -> list[int]:
    out, pos = [], 0
    while pos < len(buf):
        value, pos = _varint(buf, pos)
        out.append(value)
    return out


def constants(data: bytes) -> dict[str, np.ndarray]:
    """Every ``Const`` node's value, by node name."""
    found = {}
    for node in nodes(data):
        if node.op == "Const" and "value" in node.attrs:
            attr = dict(_fields(memoryview(node.attrs["value"])))
            if 8 in attr:  # AttrValue.tensor
                found[node.name] = tensor(bytes(attr[8]))  # type: ignore[arg-type]
    return found
