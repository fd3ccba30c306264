"""Image collections end to end: real photos embedded by mobilenet_v2, stored, searched, deleted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import skimage.data

from tests.conftest import MODEL_STORE, jpeg_bytes
from tests.server import LiveServer

NAMES = ("chelsea", "coffee", "astronaut")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(
        MODEL_STORE,
        load_models=["mobilenet_v2"],
        collections_dir=tmp_path_factory.mktemp("collections"),
        graceful_shutdown_s=0,
    ) as server:
        yield server


def _files(*images: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("image", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]


def test_add_search_by_image_and_by_id_then_delete(
    srv: LiveServer, photos: dict[str, bytes]
) -> None:
    created = httpx.post(srv.url + "/v1/collections", json={"name": "pets"})
    assert created.status_code == 201, created.text
    assert created.json() | {"generation": 0} == {
        "name": "pets",
        "model": "mobilenet_v2",
        "dim": 1280,
        "items": 0,
        "generation": 0,
        "ready": True,
        "reason": None,
    }
    again = httpx.post(srv.url + "/v1/collections", json={"name": "pets"})
    assert again.status_code == 409 and again.json()["code"] == "collection_exists"

    meta = [{"kind": "cat"}, {"kind": "drink"}, {"kind": "person", "tags": ["space"]}]
    added = httpx.post(
        srv.url + "/v1/collections/pets/items",
        files=_files(*(photos[n] for n in NAMES)),
        data={"ids": json.dumps(list(NAMES)), "metadata": json.dumps(meta)},
        timeout=60,
    )
    assert added.status_code == 200, added.text
    assert added.json() == {"collection": "pets", "added": list(NAMES), "items": 3}

    # A different encoding of chelsea (mirrored, lower JPEG quality) finds chelsea first.
    probe = jpeg_bytes(np.ascontiguousarray(skimage.data.chelsea()[:, ::-1]), quality=70)
    found = httpx.post(
        srv.url + "/v1/collections/pets/search",
        files=_files(probe, photos["coffee"]),
        data={"top_k": "2"},
        timeout=60,
    )
    assert found.status_code == 200, found.text
    cat, cup = (r["matches"] for r in found.json()["results"])
    assert cat[0]["id"] == "chelsea" and len(cat) == 2
    assert cat[0]["metadata"] == {"kind": "cat"} and cat[0]["score"] > cat[1]["score"]
    assert cat[0]["score"] > 0.8
    assert cup[0]["id"] == "coffee" and cup[0]["score"] == pytest.approx(1.0, abs=1e-4)

    similar = httpx.get(srv.url + "/v1/collections/pets/items/chelsea/similar?top_k=5").json()
    assert [m["id"] for m in similar["matches"]] == sorted(
        ["coffee", "astronaut"], key=lambda n: -_score(similar, n)
    )
    assert httpx.get(srv.url + "/v1/collections/pets/items/astronaut").json()["metadata"] == meta[2]

    dup = httpx.post(
        srv.url + "/v1/collections/pets/items",
        files=_files(photos["coffee"]),
        data={"ids": "coffee"},
        timeout=60,
    )
    assert dup.status_code == 409 and dup.json()["code"] == "already_exists"

    gone = httpx.delete(srv.url + "/v1/collections/pets/items/chelsea")
    assert gone.status_code == 200 and gone.json()["removed"] == 1
    assert httpx.get(srv.url + "/v1/collections/pets/items/chelsea").status_code == 404
    after = httpx.post(srv.url + "/v1/collections/pets/search", files=_files(probe), timeout=60)
    assert "chelsea" not in [m["id"] for m in after.json()["results"][0]["matches"]]

    listed = httpx.get(srv.url + "/v1/collections").json()["collections"]
    assert [(c["name"], c["items"]) for c in listed] == [("pets", 2)]
    assert httpx.delete(srv.url + "/v1/collections/pets").status_code == 200
    assert httpx.get(srv.url + "/v1/collections/pets").status_code == 404
    assert httpx.get(srv.url + "/v1/collections").json()["collections"] == []


def test_bad_requests_are_4xx_with_codes(srv: LiveServer, photos: dict[str, bytes]) -> None:
    assert httpx.post(srv.url + "/v1/collections", json={"name": "ok1"}).status_code == 201
    cases = [
        (
            httpx.post(srv.url + "/v1/collections", json={"name": "Bad/Name"}),
            400,
            "invalid_collection_name",
        ),
        (
            httpx.post(srv.url + "/v1/collections", json={"name": "x", "model": "nope"}),
            404,
            "model_not_found",
        ),
        (
            httpx.post(
                srv.url + "/v1/collections",
                content=b"[1]",
                headers={"content-type": "application/json"},
            ),
            400,
            "malformed_body",
        ),
        (
            httpx.post(
                srv.url + "/v1/collections/ok1/items",
                files=_files(photos["coffee"]),
                data={"ids": json.dumps(["a", "b"])},
                timeout=60,
            ),
            400,
            "ids_mismatch",
        ),
        (
            httpx.post(
                srv.url + "/v1/collections/ok1/items",
                files=_files(photos["coffee"]),
                data={"ids": "a\u200bb"},
                timeout=60,
            ),
            400,
            "invalid_id",
        ),
        (
            httpx.post(
                srv.url + "/v1/collections/ok1/items",
                files=_files(b"not an image"),
                data={"ids": "a"},
                timeout=60,
            ),
            415,
            "unsupported_media_type",
        ),
        (
            httpx.post(srv.url + "/v1/collections/nope/search", files=_files(photos["coffee"])),
            404,
            "collection_not_found",
        ),
        (httpx.get(srv.url + "/v1/collections/ok1/items/zzz/similar"), 404, "item_not_found"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["code"] == code


def _score(doc: dict, item: str) -> float:
    return next(m["score"] for m in doc["matches"] if m["id"] == item)


def test_collection_survives_a_restart(tmp_path: Path, photos: dict[str, bytes]) -> None:
    settings = {
        "load_models": ["mobilenet_v2"],
        "collections_dir": tmp_path,
        "graceful_shutdown_s": 0,
    }
    with LiveServer(MODEL_STORE, **settings) as first:
        httpx.post(first.url + "/v1/collections", json={"name": "keep"})
        r = httpx.post(
            first.url + "/v1/collections/keep/items",
            files=_files(photos["coffee"]),
            data={"ids": "cup"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
    with LiveServer(MODEL_STORE, **settings) as second:
        r = httpx.post(
            second.url + "/v1/collections/keep/search", files=_files(photos["coffee"]), timeout=60
        )
        assert r.json()["results"][0]["matches"][0]["id"] == "cup"
