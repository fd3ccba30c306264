"""The generational store: round trips, crash leftovers, corruption and restore, two writers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from serving.vectors.format import CorruptGeneration, Snapshot, decode, encode
from serving.vectors.store import NothingToRestore, StoreUnavailable, VectorStore


def _append(ids: list[str], dim: int = 4, meta: dict | None = None):
    def change(cur: Snapshot) -> tuple:
        v = np.random.default_rng(len(cur)).standard_normal((len(ids), dim)).astype(np.float32)
        return (
            cur.ids + tuple(ids),
            np.concatenate([cur.vectors, v]),
            cur.metadata + ((meta,) * len(ids)),
        )

    return change


def _gen_files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith("gen-"))


def test_format_detects_truncation_and_bit_flips() -> None:
    snap = Snapshot(3, 2, ("a", "b"), np.eye(2, dtype=np.float32), ({"k": "é"}, None))
    data = encode(snap)
    back = decode(data)
    assert back.ids == ("a", "b") and back.metadata == ({"k": "é"}, None)
    assert back.generation == 3 and np.array_equal(back.vectors, np.eye(2))
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 1
    for bad in (data[:-5], bytes(flipped), b"", b"PK\x03\x04 a zip file"):
        with pytest.raises(CorruptGeneration):
            decode(bad)


def test_generations_are_published_and_only_two_kept(tmp_path: Path) -> None:
    store = VectorStore(tmp_path / "s", dim=4)
    assert store.snapshot().generation == 0 and len(store.snapshot()) == 0
    for i in range(4):
        store.update(_append([f"x{i}"], meta={"i": i}))
    snap = VectorStore(tmp_path / "s", dim=4).snapshot()  # a fresh reader sees the newest
    assert snap.generation == 4 and snap.ids == ("x0", "x1", "x2", "x3")
    assert snap.metadata[3] == {"i": 3}
    assert _gen_files(tmp_path / "s") == ["gen-000000000003.fvec", "gen-000000000004.fvec"]


def test_refused_change_writes_nothing(tmp_path: Path) -> None:
    store = VectorStore(tmp_path / "s", dim=4)
    store.update(_append(["a"]))

    def refuse(cur: Snapshot) -> tuple:
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        store.update(refuse)
    assert store.snapshot().generation == 1 and _gen_files(tmp_path / "s") == [
        "gen-000000000001.fvec"
    ]


def test_writer_killed_mid_write_leaves_last_good_and_temp_is_cleaned(tmp_path: Path) -> None:
    d = tmp_path / "s"
    store = VectorStore(d, dim=4)
    store.update(_append(["a", "b"]))
    # What a writer killed between write and rename leaves: a partial temp of generation 2.
    good = (d / "gen-000000000001.fvec").read_bytes()
    (d / ".tmp-gen-000000000002.fvec.4242.deadbeef").write_bytes(good[: len(good) // 2])
    reopened = VectorStore(d, dim=4)
    assert reopened.snapshot().ids == ("a", "b") and reopened.snapshot().generation == 1
    assert not [p for p in d.iterdir() if p.name.startswith(".tmp-")]
    reopened.update(_append(["c"]))  # and writing goes on from there
    assert VectorStore(d, dim=4).snapshot().ids == ("a", "b", "c")


def test_corrupt_newest_is_an_error_state_until_restored(tmp_path: Path) -> None:
    d = tmp_path / "s"
    store = VectorStore(d, dim=4, name="collections/s")
    store.update(_append(["a"]))
    store.update(_append(["b"]))
    newest = d / "gen-000000000002.fvec"
    newest.write_bytes(newest.read_bytes()[:-10])  # torn by a disk fault, say

    for view in (store, VectorStore(d, dim=4, name="collections/s")):  # running and restarted
        health = view.health()
        assert not health.ready and health.generation == 2
        assert "gen-000000000002.fvec is unreadable: checksum mismatch" in (health.reason or "")
        assert health.last_good_generation == 1
        with pytest.raises(StoreUnavailable) as err:
            view.snapshot()
        assert err.value.status == 503
        assert "POST /v1/stores/collections/s/restore" in err.value.message
        with pytest.raises(StoreUnavailable):
            view.update(_append(["c"]))  # no write on top of an unknown state

    restored = store.restore()
    assert restored.ready and restored.generation == 3 and restored.items == 1
    assert store.snapshot().ids == ("a",)
    assert any(p.name.startswith("gen-000000000002.fvec.corrupt-") for p in d.iterdir())
    with pytest.raises(NothingToRestore):
        store.restore()


def test_dimension_mismatch_is_reported(tmp_path: Path) -> None:
    VectorStore(tmp_path / "s", dim=4).update(_append(["a"]))
    health = VectorStore(tmp_path / "s", dim=8).health()
    assert not health.ready and "dimension 4, expected 8" in (health.reason or "")


def _writer(directory: str, prefix: str, n: int) -> None:
    store = VectorStore(Path(directory), dim=4)
    for i in range(n):
        store.update(_append([f"{prefix}{i}"]))


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    d = tmp_path / "shared"
    reader = VectorStore(d, dim=4)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(d), p, 40)) for p in ("p", "q")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    snap = reader.snapshot()  # the reader notices the other processes' generations
    assert snap.generation == 80
    assert sorted(snap.ids) == sorted([f"p{i}" for i in range(40)] + [f"q{i}" for i in range(40)])
    assert len(_gen_files(d)) == 2 and not [p for p in d.iterdir() if p.name.startswith(".tmp")]
