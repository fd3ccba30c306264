"""A corrupt face gallery over HTTP: 503 with the reason, stale temps cleaned, admin restore."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np

from serving.tasks.faces.gallery import Gallery
from tests.conftest import MODEL_STORE
from tests.server import LiveServer


def test_corrupt_gallery_is_503_with_reason_and_restorable(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    gallery = Gallery(tmp_path / "facenet_msceleb.npz", dim=128)
    gallery.add("Ann", rng.standard_normal((2, 128)))
    gallery.add("Bob", rng.standard_normal((1, 128)))
    store = tmp_path / "facenet_msceleb"
    newest = store / "gen-000000000002.fvec"
    newest.write_bytes(newest.read_bytes()[:-7])  # torn
    stale = store / ".tmp-gen-000000000003.fvec.999.abcd"  # a writer killed mid-write
    stale.write_bytes(b"partial")

    with LiveServer(
        MODEL_STORE,
        load_models=["facenet_msceleb"],
        face_gallery_dir=tmp_path,
        admin_token="s3cret",
        graceful_shutdown_s=0,
    ) as srv:
        assert not stale.exists()
        ready = httpx.get(srv.url + "/readyz")
        assert ready.status_code == 200  # classify etc. still serve
        reason = ready.json()["unavailable_stores"]["faces/facenet_msceleb"]
        assert "gen-000000000002.fvec is unreadable: checksum mismatch" in reason

        for r in (
            httpx.get(srv.url + "/v1/faces/gallery"),
            httpx.delete(srv.url + "/v1/faces/gallery/Ann"),
        ):
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["code"] == "store_unavailable" and "checksum mismatch" in body["error"]
            assert "last good generation 1" in body["error"]

        (listed,) = httpx.get(srv.url + "/v1/stores").json()["stores"]
        assert listed["store"] == "faces/facenet_msceleb" and listed["ready"] is False
        assert listed["last_good_generation"] == 1

        url = srv.url + "/v1/stores/faces/facenet_msceleb/restore"
        assert httpx.post(url).status_code == 401
        restored = httpx.post(url, headers={"Authorization": "Bearer s3cret"})
        assert restored.status_code == 200, restored.text
        assert restored.json()["ready"] is True and restored.json()["generation"] == 3

        after = httpx.get(srv.url + "/v1/faces/gallery")
        assert after.status_code == 200
        assert after.json()["identities"] == [{"identity": "Ann", "photos": 2}]
        assert httpx.get(srv.url + "/readyz").json()["unavailable_stores"] == {}
        assert httpx.post(url, headers={"Authorization": "Bearer s3cret"}).status_code == 409
        for missing in ("faces/%2E%2E", "faces/other_model", "nokind/facenet_msceleb"):
            assert httpx.get(f"{srv.url}/v1/stores/{missing}").status_code == 404
