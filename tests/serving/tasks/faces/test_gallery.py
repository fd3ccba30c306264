"""The face gallery: per-identity best-photo search, validation and durable saves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serving.errors import BadRequest, NotFound
from serving.tasks.faces.gallery import Gallery


def _unit(*rows: list[float]) -> np.ndarray:
    a = np.asarray(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_search_scores_each_identity_by_its_best_photo(tmp_path: Path) -> None:
    g = Gallery(tmp_path / "m.npz", dim=2)
    g.add("ann", _unit([1, 0], [0, 1]))
    g.add("bob", _unit([1, 1]))
    (best, second), _ = g.search(_unit([0, 1], [1, 0.1]), top_k=2)
    (only,) = g.search(_unit([1, 1]), top_k=1)
    assert best.identity == "ann" and best.score == pytest.approx(1.0)
    assert second.identity == "bob" and second.score == pytest.approx(np.sqrt(0.5))
    assert [m.identity for m in only] == ["bob"]  # bob's 1.0 beats ann's best 0.71
    assert g.identities() == {"ann": 2, "bob": 1}


def test_saved_atomically_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    Gallery(path, dim=2).add("ann", _unit([1, 0]))
    again = Gallery(path, dim=2)
    assert again.identities() == {"ann": 1}
    assert again.remove("ann") == 1
    assert Gallery(path, dim=2).identities() == {}
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temp files left behind


def test_bad_identity_and_unknown_removal(tmp_path: Path) -> None:
    g = Gallery(tmp_path / "m.npz", dim=2)
    with pytest.raises(BadRequest):
        g.add("../etc", _unit([1, 0]))
    with pytest.raises(NotFound):
        g.remove("nobody")
    assert g.search(_unit([1, 0]), top_k=3) == [[]]
