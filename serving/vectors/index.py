"""Top-k inner-product search over L2-normalised rows: exact, or HNSW (hnswlib) for large sets.

Exact search is one matrix product and is always right; below a few tens of thousands of rows it
is also fast enough. Beyond ``ANN_THRESHOLD`` rows an HNSW graph answers in well under a
millisecond at a measured recall (``loadtest/benchmarks/vector_search.py`` compared FAISS,
hnswlib and usearch; hnswlib won on build time, add latency, search latency and memory).
hnswlib is the optional ``search`` extra: without it every search is exact.
"""

from __future__ import annotations

import importlib.util
from typing import Protocol

import numpy as np

ANN_THRESHOLD = 20_000
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 16, 100, 128


class Index(Protocol):
    size: int

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, rows)``, each ``[Q, min(k, size)]``, best first."""
        ...


def ann_available() -> bool:
    return importlib.util.find_spec("hnswlib") is not None


class ExactIndex:
    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self.size = len(vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.size)
        if k == 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        scores = queries @ self.vectors.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(scores, part, 1)
        order = np.argsort(-top, axis=1, kind="stable")
        return np.take_along_axis(top, order, 1), np.take_along_axis(part, order, 1)


class HnswIndex:
    """An hnswlib graph whose labels are row numbers; rows can only be appended."""

    def __init__(self, dim: int, vectors: np.ndarray, threads: int = 1) -> None:
        import hnswlib

        self._index = hnswlib.Index(space="ip", dim=dim)
        self._index.init_index(
            max_elements=max(1024, len(vectors)), ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M
        )
        self._index.set_ef(HNSW_EF_SEARCH)
        self.size = 0
        self.threads = threads
        self.append(vectors)

    def append(self, vectors: np.ndarray) -> None:
        if len(vectors) == 0:
            return
        needed = self.size + len(vectors)
        if needed > self._index.get_max_elements():
            self._index.resize_index(max(needed, 2 * self._index.get_max_elements()))
        rows = np.arange(self.size, needed)
        self._index.add_items(vectors, rows, num_threads=self.threads)
        self.size = needed

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.size)
        self._index.set_ef(max(HNSW_EF_SEARCH, k))
        rows, distances = self._index.knn_query(queries, k=k, num_threads=1)
        return (1.0 - distances).astype(np.float32), rows.astype(np.int64)  # ip distance = 1 - ip
