"""One generation of a vector store as one self-checking file.

Layout: magic, an 8-byte little-endian header length, a JSON header (generation, dim, ids,
metadata), the float32 vectors, then a SHA-256 of everything before it. The digest is why a
torn or bit-flipped file is *detected* on load instead of being served as wrong answers.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

MAGIC = b"FOVEAVEC1\n"
_LEN = struct.Struct("<Q")
_DIGEST = 32


class CorruptGeneration(ValueError):
    """The file is not a complete generation (truncated, altered, or not ours)."""


@dataclass(frozen=True)
class Snapshot:
    """The store's content at one generation; ``vectors`` is read-only and row-aligned with ids."""

    generation: int
    dim: int
    ids: tuple[str, ...]
    vectors: np.ndarray
    metadata: tuple[dict[str, Any] | None, ...]

    @classmethod
    def empty(cls, dim: int) -> Snapshot:
        return cls(0, dim, (), _frozen(np.zeros((0, dim), np.float32)), ())

    def __len__(self) -> int:
        return len(self.ids)


def encode(snap: Snapshot) -> bytes:
    header = json.dumps(
        {
            "generation": snap.generation,
            "dim": snap.dim,
            "ids": list(snap.ids),
            "metadata": list(snap.metadata),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    vectors = np.ascontiguousarray(snap.vectors, dtype="<f4").tobytes()
    body = b"".join((MAGIC, _LEN.pack(len(header)), header, vectors))
    return body + hashlib.sha256(body).digest()


def decode(data: bytes | memoryview) -> Snapshot:
    view = memoryview(data)
    fixed = len(MAGIC) + _LEN.size
    if len(view) < fixed + _DIGEST or bytes(view[: len(MAGIC)]) != MAGIC:
        raise CorruptGeneration("not a vector store generation (bad magic or too short)")
    body, digest = view[:-_DIGEST], bytes(view[-_DIGEST:])
    if hashlib.sha256(body).digest() != digest:
        raise CorruptGeneration("checksum mismatch (truncated or altered file)")
    (header_len,) = _LEN.unpack(body[len(MAGIC) : fixed])
    try:
        header = json.loads(bytes(body[fixed : fixed + header_len]))
        dim, ids, metadata = int(header["dim"]), header["ids"], header["metadata"]
        vectors = np.frombuffer(body[fixed + header_len :], dtype="<f4").reshape(len(ids), dim)
    except (ValueError, KeyError, TypeError) as e:
        raise CorruptGeneration(f"unreadable header or vector block: {e}") from e
    if len(metadata) != len(ids):
        raise CorruptGeneration("metadata and ids differ in length")
    return Snapshot(
        int(header["generation"]),
        dim,
        tuple(ids),
        _frozen(vectors.astype(np.float32, copy=True)),
        tuple(metadata),
    )


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a
