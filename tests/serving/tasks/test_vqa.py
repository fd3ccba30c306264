"""``/v1/vqa`` over real HTTP with the shipped MUTAN model and easy-VQA test images."""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Iterator

import httpx
import pytest

from serving.core.config import load_config
from tests.conftest import MODEL_STORE
from tests.server import LiveServer

easy_vqa = pytest.importorskip("easy_vqa")

CARD = load_config(MODEL_STORE / "vqa" / "config.yaml").card.metrics


@pytest.fixture(scope="module")
def vqa_server() -> Iterator[LiveServer]:
    with LiveServer(MODEL_STORE, load_models=["vqa", "vqa_encoder"]) as srv:
        yield srv


def ask(srv: LiveServer, image: bytes, *questions: str, **params: object) -> httpx.Response:
    files = [("image", ("shape.png", image, "image/png"))]
    data = {"question": list(questions)} if questions else {}
    return httpx.post(srv.url + "/v1/vqa", files=files, data=data, params=params, timeout=60)


def test_served_accuracy_matches_card_on_fixed_sample(vqa_server: LiveServer) -> None:
    """Every question about test images 0..19: the server scores what the card says."""
    questions, answers, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    sample = CARD["served_sample"]
    by_image: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for q, a, i in zip(questions, answers, image_ids, strict=True):
        if i < 20:
            by_image[i].append((q, a))
    correct = total = 0
    for image_id, pairs in sorted(by_image.items()):
        with open(paths[image_id], "rb") as f:
            r = ask(vqa_server, f.read(), *(q for q, _ in pairs), top_k=2)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"] == "vqa" and len(body["results"]) == len(pairs)
        for (q, a), result in zip(pairs, body["results"], strict=True):
            assert result["question"] == q and result["unknown_words"] == 0
            best, second = result["answers"]
            assert 1.0 >= best["probability"] >= second["probability"] >= 0.0
            correct += best["label"] == a
            total += 1
    assert total == sample["questions"]
    assert correct == sample["correct"]
    assert 100 * correct / total > 90


def test_json_body_and_unknown_words(vqa_server: LiveServer) -> None:
    with open(easy_vqa.get_test_image_paths()[0], "rb") as f:
        image = f.read()
    question = "What color is the shape?"
    r = httpx.post(
        vqa_server.url + "/v1/vqa",
        json={"image": base64.b64encode(image).decode(), "questions": [question, "zorp shape?"]},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert first == ask(vqa_server, image, question).json()["results"][0]
    assert len(first["answers"]) == 3  # the card's default_top_k
    assert second["unknown_words"] == 1


@pytest.mark.parametrize(
    ("questions", "status", "code"),
    [
        (("   ?! ",), 400, "empty_question"),
        (("is there a " + "very " * 20 + "red shape?",), 400, "question_too_long"),
        ((), 400, "missing_question"),
    ],
)
def test_bad_questions(
    vqa_server: LiveServer, questions: tuple[str, ...], status: int, code: str
) -> None:
    with open(easy_vqa.get_test_image_paths()[1], "rb") as f:
        r = ask(vqa_server, f.read(), *questions)
    assert r.status_code == status and r.json()["code"] == code, r.text


def test_missing_or_extra_image(vqa_server: LiveServer) -> None:
    form_only = {"question": (None, "what shape is it?")}  # multipart with no file in it
    r = httpx.post(vqa_server.url + "/v1/vqa", files=form_only, timeout=30)
    assert r.status_code == 400 and r.json()["code"] == "missing_image", r.text
    r = httpx.post(vqa_server.url + "/v1/vqa", json={"question": "what shape?"}, timeout=30)
    assert r.status_code == 400 and r.json()["code"] == "missing_image", r.text
    with open(easy_vqa.get_test_image_paths()[1], "rb") as f:
        image = f.read()
    files = [("image", ("a.png", image, "image/png")), ("image", ("b.png", image, "image/png"))]
    r = httpx.post(vqa_server.url + "/v1/vqa", files=files, data={"question": "what shape?"})
    assert r.status_code == 400 and r.json()["code"] == "one_image_only", r.text


def test_many_questions_cost_one_backbone_pass(vqa_server: LiveServer) -> None:
    def runs(model: str) -> tuple[int, int]:
        stats = httpx.get(f"{vqa_server.url}/v2/models/{model}/stats", timeout=10).json()
        s = stats["model_stats"][0]
        return s["inference_count"], s["execution_count"]

    with open(easy_vqa.get_test_image_paths()[1], "rb") as f:
        image = f.read()
    questions = ["what shape is in the image?", "what color is the shape?", "is it red?"]
    encoder_before, head_before = runs("vqa_encoder"), runs("vqa")
    r = httpx.post(vqa_server.url + "/v1/vqa", json={
        "image": base64.b64encode(image).decode(), "questions": questions}, timeout=60)
    assert r.status_code == 200, r.text
    encoder_after, head_after = runs("vqa_encoder"), runs("vqa")
    assert encoder_after[0] - encoder_before[0] == 1  # one image row through the backbone
    assert head_after[0] - head_before[0] == 3  # one head row per question
