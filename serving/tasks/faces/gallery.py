"""A face gallery: enrolled identities' embeddings, searched 1:N, persisted atomically on disk.

One gallery per embedding model (embeddings of different models are not comparable), stored as
``<folder>/<model>.npz``. Every change rewrites the file as temp + fsync + ``os.replace``, so a
crash leaves either the old or the new gallery, never a torn one.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serving.errors import BadRequest, NotFound

IDENTITY = re.compile(r"^[\w][\w .'@-]{0,127}$")


@dataclass(frozen=True)
class Match:
    identity: str
    score: float


class Gallery:
    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self.lock = asyncio.Lock()  # callers hold it around read-modify-write
        self.embeddings = np.zeros((0, dim), dtype=np.float32)
        self.labels: list[str] = []
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                self.embeddings = data["embeddings"].astype(np.float32).reshape(-1, dim)
                self.labels = [str(s) for s in data["labels"]]

    def identities(self) -> dict[str, int]:
        """Enrolled identities and how many photos each has, sorted by name."""
        names, counts = np.unique(np.asarray(self.labels, dtype=str), return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts, strict=True)}

    def add(self, identity: str, embeddings: np.ndarray) -> int:
        if not IDENTITY.fullmatch(identity):
            raise BadRequest(
                "identity must be 1-128 letters, digits, spaces or . ' @ - _ (not starting "
                "with punctuation)",
                code="invalid_identity",
            )
        self.embeddings = np.concatenate([self.embeddings, embeddings.astype(np.float32)])
        self.labels += [identity] * len(embeddings)
        self._save()
        return self.labels.count(identity)

    def remove(self, identity: str) -> int:
        keep = [i for i, label in enumerate(self.labels) if label != identity]
        removed = len(self.labels) - len(keep)
        if removed == 0:
            raise NotFound(f"identity {identity!r} is not enrolled", code="identity_not_found")
        self.embeddings = self.embeddings[keep]
        self.labels = [self.labels[i] for i in keep]
        self._save()
        return removed

    def search(self, queries: np.ndarray, top_k: int) -> list[list[Match]]:
        """Best ``top_k`` identities per query, by the best cosine score over their photos."""
        if not self.labels or len(queries) == 0:
            return [[] for _ in queries]
        names, index = np.unique(np.asarray(self.labels, dtype=str), return_inverse=True)
        scores = queries @ self.embeddings.T  # [Q, N]
        best = np.full((len(queries), len(names)), -np.inf, dtype=np.float32)
        np.maximum.at(best, (slice(None), index), scores)  # per identity: its best photo
        k = min(top_k, len(names))
        order = np.argsort(-best, axis=1, kind="stable")[:, :k]
        return [
            [Match(str(names[j]), float(best[q, j])) for j in row] for q, row in enumerate(order)
        ]

    def _save(self) -> None:
        buf = io.BytesIO()
        np.savez(buf, embeddings=self.embeddings, labels=np.asarray(self.labels, dtype=str))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getvalue())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)
