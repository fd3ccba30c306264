"""Top-k inner-product search over L2-normalised rows: exact, or HNSW (FAISS) for large sets.

Exact search is one matrix product and is always right; below ``ANN_THRESHOLD`` rows it is also
fast enough. Beyond it an HNSW graph answers in a fraction of a millisecond at a measured recall
(``loadtest/benchmarks/vector_search.py`` compared FAISS, hnswlib and usearch with the same graph
settings: FAISS built fastest at 100k and searched fastest at each ``ef`` on real embeddings,
where ``ef=64`` gave recall@10 0.998; it also ships binary wheels, hnswlib builds from source).
``faiss-cpu`` is the optional ``search`` extra: without it every search is exact.
"""

from __future__ import annotations

import importlib.util
from typing import Protocol

import numpy as np

ANN_THRESHOLD = 20_000
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 16, 100, 64


class Index(Protocol):
    size: int

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, rows)``, each ``[Q, min(k, size)]``, best first."""
        ...


def ann_available() -> bool:
    return importlib.util.find_spec("faiss") is not None


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
    """A FAISS HNSW graph (inner product) whose ids are row numbers; rows can only be appended."""

    def __init__(self, dim: int, vectors: np.ndarray, threads: int = 1) -> None:
        import faiss

        self._faiss = faiss
        self.threads = threads
        self._index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        self._index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        self.size = 0
        self.append(vectors)

    def append(self, vectors: np.ndarray) -> None:
        if len(vectors):
            self._faiss.omp_set_num_threads(self.threads)
            self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))  # ids: insertion order
            self.size = self._index.ntotal

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.size)
        params = self._faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k))
        scores, rows = self._index.search(
            np.ascontiguousarray(queries, dtype=np.float32), k, params=params
        )
        return scores, rows.astype(np.int64)  # inner product: higher is closer; -1 = no row
