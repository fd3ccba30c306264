"""Search over the store: exact answers, HNSW against them, the graph following the generations."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from serving.errors import BadRequest, NotFound
from serving.vectors import collection as collection_module
from serving.vectors.collection import Conflict, VectorCollection
from serving.vectors.index import ExactIndex, HnswIndex
from serving.vectors.store import VectorStore

DIM = 32


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((50, DIM))
    x = centers[rng.integers(0, 50, n)] + 0.3 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_exact_index_matches_brute_force() -> None:
    data, queries = clustered(500, 0), clustered(20, 1)
    scores, rows = ExactIndex(data).search(queries, 7)
    full = queries @ data.T
    for q in range(20):
        expect = np.argsort(-full[q], kind="stable")[:7]
        assert np.array_equal(np.sort(rows[q]), np.sort(expect))
        assert np.allclose(scores[q], full[q, rows[q]]) and np.all(np.diff(scores[q]) <= 0)


def test_hnsw_recall_against_exact() -> None:
    data, queries = clustered(3000, 2), clustered(100, 3)
    _, truth = ExactIndex(data).search(queries, 10)
    scores, found = HnswIndex(DIM, data).search(queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.95, recall
    assert np.allclose(scores, np.take_along_axis(queries @ data.T, found, 1), atol=1e-5)


def _collection(tmp_path: Path, threshold: int = 10**9) -> VectorCollection:
    return VectorCollection(VectorStore(tmp_path / "c", DIM), DIM, ann_threshold=threshold)


def test_add_search_get_remove(tmp_path: Path) -> None:
    c = _collection(tmp_path)
    data = clustered(40, 4)
    c.add([f"i{k}" for k in range(40)], data * 3.0, [{"k": k} for k in range(40)])  # normalised
    (hits,) = c.search(data[7:8], 3)
    assert hits[0].id == "i7" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].metadata == {"k": 7} and len(hits) == 3
    (others,) = c.search(data[7:8], 3, exclude=["i7"])  # search by a stored item, not itself
    assert [h.id for h in others] == [h.id for h in hits[1:]] + [others[-1].id]
    vector, meta = c.get("i7")
    assert np.allclose(vector, data[7], atol=1e-6) and meta == {"k": 7}
    with pytest.raises(Conflict):
        c.add(["i7"], data[:1])
    c.add(["i7"], data[8:9], [{"k": "moved"}], replace=True)
    assert c.get("i7")[1] == {"k": "moved"} and len(c.snapshot()) == 40
    assert c.remove(["i7", "i0", "nope"]) == 2
    with pytest.raises(NotFound):
        c.remove(["nope"])
    with pytest.raises(NotFound):
        c.get("i0")


@pytest.mark.parametrize(
    "vectors", [np.zeros((1, DIM)), np.full((1, DIM), np.nan), np.ones((1, DIM + 1))]
)
def test_bad_vectors_are_refused(tmp_path: Path, vectors: np.ndarray) -> None:
    with pytest.raises(BadRequest):
        _collection(tmp_path).add(["x"], vectors)


def test_graph_follows_appends_in_place_and_rebuilds_after_deletes(tmp_path: Path) -> None:
    c = _collection(tmp_path, threshold=200)
    data = clustered(600, 5)
    c.add([f"i{k}" for k in range(300)], data[:300])
    c.search(data[:1], 5)  # over the threshold: a graph is built in the background
    _wait_for_graph(c, 300)
    c.add([f"i{k}" for k in range(300, 600)], data[300:])
    (hits,) = c.search(data[450:451], 1)
    assert hits[0].id == "i450" and c._ann is not None and c._ann.size == 600  # extended
    c.remove(["i450"])
    (hits,) = c.search(data[450:451], 1)  # exact until the rebuilt graph is ready
    assert hits[0].id != "i450"
    _wait_for_graph(c, 599)
    (again,) = c.search(data[450:451], 1)
    assert again[0].id == hits[0].id


def test_without_the_ann_library_search_stays_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collection_module, "ann_available", lambda: False)
    c = _collection(tmp_path, threshold=10)
    data = clustered(50, 6)
    c.add([f"i{k}" for k in range(50)], data)
    assert c.search(data[3:4], 1)[0][0].id == "i3" and c._ann is None


def _wait_for_graph(c: VectorCollection, size: int) -> None:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if c._ann is not None and c._ann.size == size and len(c._ann_ids) == size:
            return
        c.search(c.snapshot().vectors[:1], 1)
        time.sleep(0.02)
    raise TimeoutError("HNSW graph not rebuilt")
