"""The demo page at ``/`` in a real (headless) Chromium against the real server and models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.http.ui import STATIC
from tests.conftest import MODEL_STORE
from tests.server import LiveServer


class SeenHeaders:
    """Records the Authorization header of every request (pure ASGI, test only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            auth = dict(scope["headers"]).get(b"authorization", b"").decode()
            self.seen.append((scope["path"], auth))
        await self.app(scope, receive, send)


MODELS = ["mobilenet_v2", "shapes_detector", "shapes_segmenter", "vqa", "vqa_encoder"]
MODELS += ["mtcnn", "mtcnn_rnet", "mtcnn_onet", "facenet_msceleb"]


@pytest.fixture(scope="module")
def site(browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    gallery = tmp_path_factory.mktemp("gallery")
    srv = LiveServer(MODEL_STORE, load_models=MODELS, face_gallery_dir=gallery)
    srv.app.add_middleware(SeenHeaders)
    with srv:
        yield srv


def _seen(site: LiveServer) -> list[tuple[str, str]]:
    app = site.app.middleware_stack
    while not isinstance(app, SeenHeaders):
        app = app.app
    return app.seen


def _open(browser, site: LiveServer, task: str) -> WebDriverWait:
    browser.get(site.url + "/")
    wait = WebDriverWait(browser, 30)
    ready = [f"{m}: ready" for m in MODELS]
    wait.until(lambda d: all(r in d.find_element(By.ID, "model-list").text for r in ready))
    browser.find_element(By.CSS_SELECTOR, f"input[name=task][value='{task}']").click()
    return wait


def _upload(browser, wait: WebDriverWait, path: Path) -> None:
    browser.find_element(By.ID, "file").send_keys(str(path))
    wait.until(ec.element_to_be_clickable((By.ID, "run")))


def test_upload_chelsea_and_read_cat(browser, site: LiveServer, screenshot) -> None:
    wait = _open(browser, site, "classify")
    _upload(browser, wait, STATIC / "sample-chelsea.jpg")
    browser.find_element(By.ID, "run").click()
    labels = wait.until(ec.visibility_of_element_located((By.ID, "labels")))
    first = labels.find_element(By.CSS_SELECTOR, "li .label").text
    assert "cat" in first.lower(), labels.text
    # mobilenet_v2 can explain itself: the page asked for the CAM and drew its evidence box.
    last = browser.execute_script("return window.fovea.last")
    assert last["cam"] is True
    assert last["response"]["results"][0]["predictions"][0]["cam"]["box"]
    assert browser.find_element(By.ID, "error").is_displayed() is False
    screenshot("page-classify")


def test_detection_draws_boxes_on_the_picture(browser, site: LiveServer, screenshot) -> None:
    wait = _open(browser, site, "detect")
    _upload(browser, wait, STATIC / "sample-scene.jpg")
    browser.find_element(By.ID, "run").click()
    wait.until(ec.visibility_of_element_located((By.ID, "detections")))
    last = browser.execute_script("return window.fovea.last")
    assert last["task"] == "detect" and last["boxes"], last
    assert len(last["boxes"]) == len(last["response"]["results"][0]["detections"])
    # Read the canvas back: the left edge of each box is painted in that box's colour.
    painted = browser.execute_script(
        """
        const ctx = document.getElementById('canvas-0').getContext('2d');
        return window.fovea.last.boxes.map(b => {
          ctx.fillStyle = b.stroke;  // normalises any CSS colour to #rrggbb
          const want = ctx.fillStyle;
          const [x1, y1, x2, y2] = b.box;
          const p = ctx.getImageData(Math.floor(x1), Math.floor((y1 + y2) / 2), 1, 1).data;
          const got = '#' + [p[0], p[1], p[2]].map(v => v.toString(16).padStart(2, '0')).join('');
          return [want, got];
        });
        """
    )
    # The last box drawn is on top everywhere; earlier ones may be overdrawn where they cross.
    want, got = painted[-1]
    assert want == got, painted
    assert sum(w == g for w, g in painted) >= len(painted) / 2, painted
    screenshot("page-detect")


def test_server_error_message_is_shown(browser, site: LiveServer, screenshot) -> None:
    wait = _open(browser, site, "classify")
    _upload(browser, wait, STATIC / "sample-chelsea.jpg")
    top_k = browser.find_element(By.ID, "top-k")
    top_k.clear()
    top_k.send_keys("0")  # the server, not the page, refuses it: 422 validation_error
    browser.find_element(By.ID, "run").click()
    error = wait.until(ec.visibility_of_element_located((By.ID, "error")))
    assert error.text.startswith("422: top_k:"), error.text
    assert "validation_error" in error.text and "greater than or equal to 1" in error.text
    screenshot("page-error", publish=False)


def test_big_photo_is_downsized_before_upload(browser, site: LiveServer, tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    scene = Image.open(STATIC / "sample-scene.jpg")
    scene.resize((scene.width * 8, scene.height * 8), Image.Resampling.BICUBIC).save(big)
    wait = _open(browser, site, "detect")
    _upload(browser, wait, big)
    info = browser.find_element(By.CSS_SELECTOR, "#slot-0 .info").text
    assert "2352\u00d72976" in info and "sent as 1265\u00d71600" in info, info
    browser.find_element(By.ID, "run").click()
    wait.until(ec.visibility_of_element_located((By.ID, "detections")))
    result = browser.execute_script("return window.fovea.last.response.results[0]")
    assert (result["width"], result["height"]) == (1265, 1600)  # what the server decoded
    assert result["detections"]


def test_api_key_is_sent_as_bearer(browser, site: LiveServer) -> None:
    wait = _open(browser, site, "classify")
    browser.find_element(By.CSS_SELECTOR, "#key-box summary").click()
    key = browser.find_element(By.ID, "api-key")
    key.send_keys("s3cret-key\n")
    browser.execute_script("document.getElementById('api-key').dispatchEvent(new Event('change'))")
    _upload(browser, wait, STATIC / "sample-chelsea.jpg")
    browser.find_element(By.ID, "run").click()
    wait.until(ec.visibility_of_element_located((By.ID, "labels")))
    sent = dict(_seen(site))
    assert sent["/v1/classify"] == "Bearer s3cret-key" and sent["/v1/models"] == "Bearer s3cret-key"
    browser.execute_script("localStorage.clear()")


def test_segmentation_overlays_the_mask(browser, site: LiveServer) -> None:
    wait = _open(browser, site, "segment")
    _upload(browser, wait, STATIC / "sample-scene.jpg")
    browser.find_element(By.ID, "run").click()
    classes = wait.until(ec.visibility_of_element_located((By.ID, "classes")))
    last = browser.execute_script("return window.fovea.last")
    assert last["classes"] and all(c in classes.text for c in last["classes"])
    # Pixels the server labelled as a shape are tinted; background pixels are untouched.
    changed = browser.execute_script(
        """
        const canvas = document.getElementById('canvas-0');
        const drawn = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        const plain = document.createElement('canvas');
        plain.width = canvas.width; plain.height = canvas.height;
        const img = new Image();
        return new Promise(done => {
          img.onload = () => {
            const ctx = plain.getContext('2d');
            ctx.drawImage(img, 0, 0);
            const base = ctx.getImageData(0, 0, plain.width, plain.height).data;
            const mask = new Image();
            mask.onload = () => {
              const m = document.createElement('canvas');
              m.width = canvas.width; m.height = canvas.height;
              const mctx = m.getContext('2d');
              mctx.drawImage(mask, 0, 0);
              const ids = mctx.getImageData(0, 0, m.width, m.height).data;
              let shape = 0, shapeChanged = 0, bg = 0, bgChanged = 0;
              for (let i = 0; i < ids.length; i += 4) {
                const diff = Math.abs(drawn[i] - base[i]) + Math.abs(drawn[i + 1] - base[i + 1])
                  + Math.abs(drawn[i + 2] - base[i + 2]);
                const isShape = ids[i] + ids[i + 1] + ids[i + 2] > 0;
                if (isShape) { shape++; if (diff > 30) shapeChanged++; }
                else { bg++; if (diff > 30) bgChanged++; }
              }
              done([shape, shapeChanged, bg, bgChanged]);
            };
            mask.src = 'data:image/png;base64,' + window.fovea.last.response.results[0].mask_png;
          };
          img.src = '/static/sample-scene.jpg';
        });
        """
    )
    shape, shape_changed, bg, bg_changed = changed
    assert shape > 0 and shape_changed / shape > 0.9, changed
    assert bg_changed / bg < 0.01, changed


def test_vqa_answers_the_question(browser, site: LiveServer) -> None:
    wait = _open(browser, site, "vqa")
    _upload(browser, wait, STATIC / "sample-shape.png")
    question = browser.find_element(By.ID, "question")
    question.clear()
    question.send_keys("what shape is in the image?")
    browser.find_element(By.ID, "run").click()
    answers = wait.until(ec.visibility_of_element_located((By.ID, "answers")))
    response = browser.execute_script("return window.fovea.last.response")
    best = response["results"][0]["answers"][0]["label"]
    assert response["results"][0]["question"] == "what shape is in the image?"
    assert answers.find_element(By.CSS_SELECTOR, "li .label").text == best


def test_verify_and_identify_faces(browser, site: LiveServer, tmp_path: Path) -> None:
    mirrored = tmp_path / "mirrored.png"
    ImageOps.mirror(Image.open(STATIC / "sample-astronaut.jpg")).save(mirrored)
    wait = _open(browser, site, "verify")
    browser.find_element(By.ID, "file").send_keys(str(STATIC / "sample-astronaut.jpg"))
    browser.find_element(By.ID, "file-2").send_keys(str(mirrored))
    wait.until(ec.element_to_be_clickable((By.ID, "run"))).click()
    verdict = wait.until(ec.visibility_of_element_located((By.ID, "verdict")))
    assert verdict.text == "Same person"

    wait = _open(browser, site, "identify")
    _upload(browser, wait, STATIC / "sample-astronaut.jpg")
    browser.find_element(By.ID, "enrol-name").send_keys("eileen")
    browser.find_element(By.ID, "enrol").click()
    wait.until(lambda d: "eileen (1 photo)" in d.find_element(By.ID, "gallery-list").text)
    browser.find_element(By.ID, "file").send_keys(str(mirrored))
    wait.until(ec.element_to_be_clickable((By.ID, "run"))).click()
    identities = wait.until(ec.visibility_of_element_located((By.ID, "identities")))
    assert identities.text.startswith("eileen")
    assert [b["identity"] for b in browser.execute_script("return window.fovea.last.boxes")] == [
        "eileen"
    ]
