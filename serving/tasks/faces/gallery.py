"""A face gallery: enrolled identities' embeddings, searched 1:N, on the shared vector store.

One gallery per embedding model (embeddings of different models are not comparable), kept as a
crash-safe, multi-process store in ``<folder>/<model>/`` (see :mod:`serving.vectors.store`).
Each enrolled photo is one row whose metadata names its identity; identities are NFKC-normalised
names (:mod:`serving.vectors.names`). A gallery written by earlier versions as
``<folder>/<model>.npz`` is imported once, on first open, and the old file renamed
``*.npz.migrated``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serving.errors import BadRequest, NotFound
from serving.vectors.collection import VectorCollection
from serving.vectors.format import Snapshot
from serving.vectors.names import normalise_name
from serving.vectors.store import VectorStore

log = logging.getLogger(__name__)
OVERSAMPLE = 20  # approximate search: rows fetched per identity wanted, before grouping


@dataclass(frozen=True)
class Match:
    identity: str
    score: float


class Gallery:
    """``Gallery(folder / "<model>.npz", dim)``: the path names the model's gallery."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self.lock = asyncio.Lock()  # callers hold it around writes (one writer per event loop)
        store = VectorStore(path.with_suffix(""), dim, name=f"faces/{path.stem}")
        self.vectors = VectorCollection(store, dim)
        if path.suffix == ".npz" and path.is_file():
            self._import_legacy(path)

    @staticmethod
    def _identity(snap: Snapshot) -> list[str]:
        return [m["identity"] if m else "" for m in snap.metadata]

    def identities(self) -> dict[str, int]:
        """Enrolled identities and how many photos each has, sorted by name."""
        names, counts = np.unique(
            np.asarray(self._identity(self.vectors.snapshot()), dtype=str), return_counts=True
        )
        return {str(n): int(c) for n, c in zip(names, counts, strict=True)}

    def add(self, identity: str, embeddings: np.ndarray) -> int:
        """Enrol photos of ``identity``; returns how many photos it has now."""
        name = normalise_name(identity)
        ids = [f"{name}#{secrets.token_hex(8)}" for _ in range(len(embeddings))]
        snap = self.vectors.add(ids, embeddings, [{"identity": name}] * len(ids))
        return self._identity(snap).count(name)

    def remove(self, identity: str) -> int:
        """Forget every photo of ``identity``; returns how many were removed."""
        name = _lookup_name(identity)
        snap = self.vectors.snapshot()
        rows = [i for i, who in enumerate(self._identity(snap)) if who == name]
        if not rows:
            raise NotFound(f"identity {name!r} is not enrolled", code="identity_not_found")
        try:
            return self.vectors.remove([snap.ids[i] for i in rows])
        except NotFound:  # another process removed them first
            raise NotFound(
                f"identity {name!r} is not enrolled", code="identity_not_found"
            ) from None

    def search(self, queries: np.ndarray, top_k: int) -> list[list[Match]]:
        """Best ``top_k`` identities per query, by the best cosine score over their photos."""
        snap = self.vectors.snapshot()
        if len(snap) == 0 or len(queries) == 0:
            return [[] for _ in queries]
        labels = np.asarray(self._identity(snap), dtype=str)
        names, index = np.unique(labels, return_inverse=True)
        q = np.asarray(queries, dtype=np.float32)
        exact = len(snap) < self.vectors.ann_threshold  # then score every photo
        wanted = len(snap) if exact else max(top_k * OVERSAMPLE, 100)
        scores, rows = self.vectors.search_rows(snap, q, wanted)
        best = np.full((len(q), len(names)), -np.inf, dtype=np.float32)
        for i in range(len(q)):  # per identity: its best photo among the rows found
            np.maximum.at(best[i], index[rows[i]], scores[i])
        k = min(top_k, len(names))
        order = np.argsort(-best, axis=1, kind="stable")[:, :k]
        return [
            [Match(str(names[j]), float(best[q_, j])) for j in row if np.isfinite(best[q_, j])]
            for q_, row in enumerate(order)
        ]

    def _import_legacy(self, path: Path) -> None:
        try:
            with np.load(path, allow_pickle=False) as data:
                vectors = data["embeddings"].astype(np.float32).reshape(-1, self.dim)
                labels = [_lookup_name(str(s)) for s in data["labels"]]
        except FileNotFoundError:
            return  # another process imported and renamed it meanwhile
        except Exception as e:  # a torn legacy file: leave it for the operator, start empty
            log.error("face gallery %s: legacy file unreadable (%s); not imported", path, e)
            return

        def change(cur: Snapshot) -> tuple | None:
            if cur.generation > 0:
                return None  # another process imported it already
            ids = tuple(f"{name}#{secrets.token_hex(8)}" for name in labels)
            return ids, vectors, tuple({"identity": name} for name in labels)

        self.vectors.store.update(change)
        with contextlib.suppress(FileNotFoundError):  # another process renamed it first
            path.replace(path.with_name(path.name + ".migrated"))
        log.info(
            "face gallery %s: imported %d photos into %s",
            path,
            len(labels),
            self.vectors.store.directory,
        )


def _lookup_name(raw: str) -> str:
    """The normalised form, or ``raw`` itself for a name enrolled before normalisation existed."""
    try:
        return normalise_name(raw)
    except BadRequest:
        return raw
