"""A store plus the index that searches its newest generation: what the gallery and collections use.

The index follows the store: after a generation that only appended rows (the common case, an
``add``) the HNSW graph takes the new rows in place; after any other change (a delete, a replaced
id, a reload of another process's rewrite) the graph is rebuilt in a background thread and, until
it is ready, searches are exact — slower, never wrong.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.errors import BadRequest, NotFound
from serving.vectors.format import Snapshot
from serving.vectors.index import ANN_THRESHOLD, ExactIndex, HnswIndex, Index, ann_available
from serving.vectors.store import VectorStore

log = logging.getLogger(__name__)


class Conflict(BadRequest):
    status, code = 409, "already_exists"


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    metadata: dict[str, Any] | None


def normalise(vectors: np.ndarray, dim: int) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2 or v.shape[1] != dim:
        raise BadRequest(f"vectors must be [N, {dim}], got {list(v.shape)}", code="bad_vectors")
    if not np.isfinite(v).all():
        raise BadRequest("vectors must be finite", code="bad_vectors")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    if (norms == 0).any():
        raise BadRequest("a zero vector has no direction to compare", code="bad_vectors")
    return v / norms


class VectorCollection:
    def __init__(self, store: VectorStore, dim: int, ann_threshold: int = ANN_THRESHOLD) -> None:
        self.store = store
        self.dim = dim
        self.ann_threshold = ann_threshold
        self._lock = threading.Lock()
        self._ann: HnswIndex | None = None
        self._ann_ids: tuple[str, ...] = ()  # the rows the graph holds, in order
        self._ann_generation = -1  # the generation the graph was last checked against
        self._building: threading.Thread | None = None

    # -- reads -----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return self.store.snapshot()

    def search(
        self, queries: np.ndarray, k: int, exclude: Sequence[str | None] = ()
    ) -> list[list[Hit]]:
        """Top ``k`` per query; ``exclude[i]`` (an id) is left out of query ``i``'s answer."""
        snap = self.store.snapshot()
        q = normalise(queries, self.dim)
        scores, rows = self.search_rows(snap, q, k + (1 if any(exclude) else 0))
        out = []
        for i in range(len(q)):
            skip = exclude[i] if i < len(exclude) else None
            hits = [
                Hit(snap.ids[r], float(s), snap.metadata[r])
                for s, r in zip(scores[i], rows[i], strict=True)
                if r >= 0 and snap.ids[r] != skip
            ]
            out.append(hits[:k])
        return out

    def search_rows(
        self, snap: Snapshot, queries: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        return self._index(snap).search(queries, k)

    def get(self, item_id: str) -> tuple[np.ndarray, dict[str, Any] | None]:
        snap = self.store.snapshot()
        try:
            row = snap.ids.index(item_id)
        except ValueError:
            raise NotFound(f"no item {item_id!r}", code="item_not_found") from None
        return snap.vectors[row], snap.metadata[row]

    # -- writes ----------------------------------------------------------------------------

    def add(
        self,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        *,
        replace: bool = False,
    ) -> Snapshot:
        """Append rows; an id already present is a 409 unless ``replace`` (then it moves)."""
        v = normalise(vectors, self.dim)
        meta = tuple(metadata) if metadata is not None else (None,) * len(ids)
        if not (len(ids) == len(v) == len(meta)):
            raise BadRequest("ids, vectors and metadata differ in length", code="bad_vectors")
        if len(set(ids)) != len(ids):
            raise BadRequest("ids repeat within one request", code="duplicate_id")

        def change(cur: Snapshot) -> tuple:
            present = set(cur.ids).intersection(ids)
            if present and not replace:
                raise Conflict(f"ids already present: {sorted(present)[:10]}")
            keep = [i for i, x in enumerate(cur.ids) if x not in present]
            if len(keep) == len(cur.ids):
                return cur.ids + tuple(ids), np.concatenate([cur.vectors, v]), cur.metadata + meta
            return (
                tuple(cur.ids[i] for i in keep) + tuple(ids),
                np.concatenate([cur.vectors[keep], v]),
                tuple(cur.metadata[i] for i in keep) + meta,
            )

        return self.store.update(change)

    def remove(self, ids: Sequence[str]) -> int:
        """Delete ``ids``; 404 if none of them is present. Returns how many were removed."""
        gone = set(ids)
        removed = 0

        def change(cur: Snapshot) -> tuple:
            nonlocal removed
            keep = [i for i, x in enumerate(cur.ids) if x not in gone]
            removed = len(cur.ids) - len(keep)
            if removed == 0:
                raise NotFound(f"none of {sorted(gone)[:10]} is present", code="item_not_found")
            return (
                tuple(cur.ids[i] for i in keep),
                cur.vectors[keep],
                tuple(cur.metadata[i] for i in keep),
            )

        self.store.update(change)
        return removed

    # -- index upkeep ----------------------------------------------------------------------

    def _index(self, snap: Snapshot) -> Index:
        if len(snap) < self.ann_threshold or not ann_available():
            return ExactIndex(snap.vectors)
        with self._lock:
            if self._ann is not None and self._ann_generation == snap.generation:
                return self._ann
            held = len(self._ann_ids)
            if self._ann is not None and snap.ids[:held] == self._ann_ids:
                if held < len(snap):  # appended rows: extend the graph in place
                    self._ann.append(snap.vectors[held:])
                    self._ann_ids = snap.ids
                self._ann_generation = snap.generation
                return self._ann
            if self._building is None or not self._building.is_alive():
                self._building = threading.Thread(
                    target=self._rebuild, args=(snap,), name="ann-rebuild", daemon=True
                )
                self._building.start()
        return ExactIndex(snap.vectors)

    def _rebuild(self, snap: Snapshot) -> None:
        index = HnswIndex(self.dim, snap.vectors)
        with self._lock:
            self._ann, self._ann_ids = index, snap.ids
        log.info("%s: HNSW index rebuilt over %d rows", self.store.name, len(snap))
