"""The face gallery on the vector store: best-photo search, names, durability, legacy import."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serving.errors import BadRequest, NotFound
from serving.tasks.faces.gallery import Gallery
from serving.vectors.store import StoreUnavailable


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


def test_saved_as_generations_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    Gallery(path, dim=2).add("ann", _unit([1, 0]))
    again = Gallery(path, dim=2)
    assert again.identities() == {"ann": 1}
    assert again.remove("ann") == 1
    assert Gallery(path, dim=2).identities() == {}
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == [".lock", "gen-000000000001.fvec", "gen-000000000002.fvec"]


def test_names_are_nfkc_normalised_and_checked(tmp_path: Path) -> None:
    g = Gallery(tmp_path / "m.npz", dim=2)
    assert g.add("\uff21nn  Lee", _unit([1, 0])) == 1
    assert g.add("Ann Lee", _unit([0, 1])) == 2  # the same identity
    assert g.identities() == {"Ann Lee": 2}
    with pytest.raises(BadRequest):
        g.add("\u0410nn Lee", _unit([1, 0]))  # Cyrillic A: refused, not a look-alike identity
    with pytest.raises(BadRequest):
        g.add("../etc", _unit([1, 0]))
    assert g.remove("\uff21nn Lee") == 2
    with pytest.raises(NotFound):
        g.remove("nobody")
    assert g.search(_unit([1, 0]), top_k=3) == [[]]


def test_two_galleries_on_one_folder_see_each_others_writes(tmp_path: Path) -> None:
    a, b = Gallery(tmp_path / "m.npz", dim=2), Gallery(tmp_path / "m.npz", dim=2)
    a.add("ann", _unit([1, 0]))
    b.add("bob", _unit([0, 1]))  # b re-reads a's generation under the lock: nothing lost
    assert a.identities() == b.identities() == {"ann": 1, "bob": 1}
    assert a.search(_unit([0, 1]), top_k=1)[0][0].identity == "bob"


def test_legacy_npz_gallery_is_imported_once(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    np.savez(path, embeddings=_unit([1, 0], [0, 1]), labels=np.asarray(["ann", "bob"]))
    assert Gallery(path, dim=2).identities() == {"ann": 1, "bob": 1}
    assert not path.exists() and (tmp_path / "m.npz.migrated").is_file()
    assert Gallery(path, dim=2).identities() == {"ann": 1, "bob": 1}


def test_corrupt_gallery_is_503_with_reason_until_restored(tmp_path: Path) -> None:
    g = Gallery(tmp_path / "m.npz", dim=2)
    g.add("ann", _unit([1, 0]))
    g.add("bob", _unit([0, 1]))
    newest = tmp_path / "m" / "gen-000000000002.fvec"
    newest.write_bytes(b"\0" * newest.stat().st_size)  # zeroed by a crash, say
    for call in (
        g.identities,
        lambda: g.search(_unit([1, 0]), 1),
        lambda: g.add("cy", _unit([1, 1])),
    ):
        with pytest.raises(StoreUnavailable) as err:
            call()
        assert err.value.status == 503 and "faces/m" in err.value.message
        assert "last good generation 1" in err.value.message
    g.vectors.store.restore()
    assert g.identities() == {"ann": 1}
