"""The Python client against the real server and models: every task endpoint, typed results."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, ImageOps

from serving.client import AsyncClient, Client, FoveaAPIError, models
from serving.http.ui import STATIC
from tests.conftest import MODEL_STORE, ROOT
from tests.server import LiveServer

CAT = STATIC / "sample-chelsea.jpg"
SCENE = STATIC / "sample-scene.jpg"
SHAPE = STATIC / "sample-shape.png"
FACE = STATIC / "sample-astronaut.jpg"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    gallery = tmp_path_factory.mktemp("gallery")
    with LiveServer(MODEL_STORE, face_gallery_dir=gallery) as server:
        yield server


@pytest.fixture
def fovea(srv: LiveServer) -> Iterator[Client]:
    with Client(srv.url, timeout=60) as client:
        yield client


def test_classify_path_bytes_and_pil(fovea: Client) -> None:
    pil = Image.open(CAT)
    r = fovea.classify(CAT, CAT.read_bytes(), pil, top_k=3)
    assert isinstance(r, models.ClassifyResponse) and r.model == "mobilenet_v2"
    assert len(r.results) == 3 and all(len(c.predictions) == 3 for c in r.results)
    for c in r.results:
        assert "cat" in c.top.label and c.top.probability > 0.5
    # the same pixels (JPEG bytes vs lossless PNG of the decoded JPEG) give the same answer
    assert r.results[0].top.probability == pytest.approx(r.results[2].top.probability, abs=0.02)
    assert r.request_id and len(r.request_id) == 32


def test_classify_explains_with_cam_and_embeds(fovea: Client) -> None:
    r = fovea.classify(CAT, top_k=2, explain="cam", explain_png=True)
    (image,) = r.results
    w, h = Image.open(CAT).size
    for label in image.predictions:
        x1, y1, x2, y2 = label.cam.box
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        grid = np.asarray(label.cam.grid)
        assert grid.min() == pytest.approx(0) and grid.max() == pytest.approx(1)
    assert Image.open(io.BytesIO(image.explain_png_bytes)).size == (w, h)
    emb = fovea.embed(CAT, FACE)
    vectors = np.asarray([e.embedding for e in emb.results])
    assert vectors.shape == (2, emb.dimension)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1, 1], abs=1e-3)


def test_detect_boxes_inside_the_image_and_render(fovea: Client) -> None:
    r = fovea.detect(SCENE, score_threshold=0.3, render=True)
    (image,) = r.results
    w, h = Image.open(SCENE).size
    assert (image.width, image.height) == (w, h) and image.detections
    for d in image.detections:
        x1, y1, x2, y2 = d.box
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h and d.score >= 0.3
    assert Image.open(io.BytesIO(image.rendered_bytes)).size == (w, h)
    only = fovea.detect(SCENE, classes=[image.detections[0].label], score_threshold=0.3)
    assert {d.label for d in only.results[0].detections} == {image.detections[0].label}


def test_segment_png_mask_matches_the_classes(fovea: Client) -> None:
    r = fovea.segment(SCENE, mask_format="png")
    (seg,) = r.results
    mask = np.asarray(Image.open(io.BytesIO(seg.mask_bytes)))
    assert mask.shape == (seg.height, seg.width)
    ids, counts = np.unique(mask, return_counts=True)
    fractions = {r.labels[i]: n / mask.size for i, n in zip(ids, counts, strict=True)}
    for c in seg.classes:
        assert fractions[c.label] == pytest.approx(c.fraction, abs=1e-3)


def test_caption_and_vqa(fovea: Client) -> None:
    cap = fovea.caption(SCENE, beam_size=2, num_captions=2)
    texts = [c.text for c in cap.results[0].captions]
    assert len(texts) == 2 and all(t.split() for t in texts)
    ans = fovea.vqa(SHAPE, "what shape is in the image?", "what color is the shape?", top_k=2)
    assert [q.question for q in ans.results] == [
        "what shape is in the image?",
        "what color is the shape?",
    ]
    assert all(len(q.answers) == 2 for q in ans.results)


def test_faces_detect_embed_verify(fovea: Client) -> None:
    found = fovea.faces_detect(FACE, CAT)
    assert [len(i.faces) for i in found.results] == [1, 0]
    assert len(found.results[0].faces[0].landmarks) == 5
    emb = fovea.faces_embed(FACE, faces="largest")
    vector = np.asarray(emb.results[0].faces[0].embedding)
    assert np.linalg.norm(vector) == pytest.approx(1, abs=1e-3)
    mirrored = ImageOps.mirror(Image.open(FACE))
    same = fovea.faces_verify(FACE, mirrored)
    assert same.same_person and same.similarity >= same.threshold
    with pytest.raises(FoveaAPIError) as err:
        fovea.faces_verify(FACE, CAT)
    assert err.value.status == 400 and err.value.code == "no_face" and err.value.request_id


def test_gallery_enrol_identify_forget(fovea: Client) -> None:
    enrolled = fovea.faces_enrol("eileen collins", FACE)
    assert (enrolled.identity, enrolled.added) == ("eileen collins", 1)
    assert [(g.identity, g.photos) for g in fovea.faces_gallery().identities] == [
        ("eileen collins", 1)
    ]
    who = fovea.faces_identify(ImageOps.mirror(Image.open(FACE)), top_k=1)
    (face,) = who.results[0].faces
    assert face.identity == "eileen collins" and face.similarity >= who.threshold
    assert fovea.faces_forget("eileen collins").removed == 1
    assert fovea.faces_gallery().identities == []


def test_errors_are_typed_with_code_and_request_id(fovea: Client) -> None:
    with pytest.raises(FoveaAPIError) as err:
        fovea.classify(CAT, model="no_such_model")
    assert err.value.status == 404 and "no_such_model" in err.value.message
    with pytest.raises(FoveaAPIError) as err:
        fovea.classify(b"not an image")
    assert err.value.status == 415 and "not a decodable image" in err.value.message
    with pytest.raises(TypeError, match="expected a path, bytes or a PIL image"):
        fovea.classify(42)
    assert {m.name for m in fovea.models().models} >= {"mobilenet_v2", "vqa"}


def test_async_client_runs_tasks_concurrently(srv: LiveServer) -> None:
    async def main() -> tuple[models.ClassifyResponse, models.DetectResponse]:
        async with AsyncClient(srv.url) as fovea:
            assert await fovea.ready()
            return await asyncio.gather(fovea.classify(CAT), fovea.detect(SCENE))

    cls, det = asyncio.run(main())
    assert "cat" in cls.results[0].top.label and det.results[0].detections


def test_retries_503_as_retry_after_says_then_gives_up(tmp_path: Path) -> None:
    """The retry policy, with a transport that answers 503 twice (Retry-After: 0) then 200."""
    seen: list[str] = []
    body = {"model": "m", "version": 1, "results": [{"predictions": []}]}

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        if len(seen) <= 2:
            overloaded = {"error": "queue full", "code": "overloaded"}
            return httpx.Response(503, json=overloaded, headers={"Retry-After": "0"})
        return httpx.Response(200, json=body, headers={"X-Request-ID": "r1"})

    transport = httpx.MockTransport(answer)
    with Client("http://fovea", api_key="k3y", transport=transport) as fovea:
        assert fovea.classify(b"x").request_id == "r1"
    assert seen == ["Bearer k3y"] * 3
    seen.clear()
    with (
        Client("http://fovea", retries=1, transport=transport) as fovea,
        pytest.raises(FoveaAPIError) as err,
    ):
        fovea.classify(b"x")
    assert err.value.status == 503 and err.value.code == "overloaded" and len(seen) == 2


def test_client_imports_nothing_of_the_server() -> None:
    code = (
        "import sys, serving.client\n"
        "heavy = {'fastapi', 'onnxruntime', 'numpy', 'PIL', 'starlette', 'uvicorn'}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
