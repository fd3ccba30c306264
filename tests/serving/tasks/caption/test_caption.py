"""``/v1/caption`` over real HTTP with the shipped captioner on unseen generated scenes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import httpx
import numpy as np
import pytest

from export.captioner.captions import mention_counts
from export.captioner.scenes import scene_jpeg
from serving.core.config import load_config
from serving.text import tokenize
from tests.conftest import MODEL_STORE
from tests.server import LiveServer

SEED = 0
CARD = load_config(MODEL_STORE / "captioner" / "config.yaml").card.metrics


@pytest.fixture(scope="module")
def caption_server() -> Iterator[LiveServer]:
    with LiveServer(MODEL_STORE, load_models=["captioner", "captioner_decoder"]) as srv:
        yield srv


def caption(srv: LiveServer, *images: bytes, **params: object) -> httpx.Response:
    files = [("image", (f"s{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]
    return httpx.post(srv.url + "/v1/caption", files=files, params=params, timeout=120)


def test_captions_name_objects_present(caption_server: LiveServer) -> None:
    """Unseen test scenes, greedy: the served captions name the objects the card says they do."""
    sample = CARD["served_sample"]
    scenes = [scene_jpeg("test", i, SEED) for i in range(12)]
    r = caption(caption_server, *(jpeg for jpeg, _ in scenes), beam_size=1)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "captioner" and len(body["results"]) == len(scenes)
    texts = [result["captions"][0]["text"] for result in body["results"]]
    counts = mention_counts([scene for _, scene in scenes], texts)
    assert counts == {k: sample[k] for k in counts}  # serving decodes as the recipe did
    assert counts["class_named"] / counts["objects"] >= 0.5


def test_beam_returns_distinct_ranked_captions(caption_server: LiveServer) -> None:
    jpegs = [scene_jpeg("test", i, SEED)[0] for i in range(3)]
    r = caption(caption_server, *jpegs, beam_size=3, num_captions=3)
    assert r.status_code == 200, r.text
    for result in r.json()["results"]:
        captions = result["captions"]
        assert len({c["text"] for c in captions}) == 3
        assert all(c["log_probability"] < 0 and 1 <= c["tokens"] <= 20 for c in captions)
        probs = [c["log_probability"] for c in captions]
        assert probs == sorted(probs, reverse=True)  # length_penalty 0: ranked by log-prob


def test_concurrent_requests_get_the_captions_of_sequential_ones(
    caption_server: LiveServer,
) -> None:
    """Eight requests at once share decoder steps; each still gets its own image's captions.
    Only float rounding may differ (a row's log-probs differ by ~1e-6 between a batch of one and
    a larger batch), never the words."""
    jpegs = [scene_jpeg("test", i, SEED)[0] for i in range(40, 48)]
    for params in ({"beam_size": 1}, {"beam_size": 3, "num_captions": 3}):
        alone = [caption(caption_server, j, **params).json()["results"][0] for j in jpegs]
        with ThreadPoolExecutor(len(jpegs)) as pool:
            together = list(pool.map(partial(caption, caption_server, **params), jpegs))
        assert all(r.status_code == 200 for r in together)
        for one, many in zip(alone, (r.json()["results"][0] for r in together), strict=True):
            assert [c["text"] for c in many["captions"]] == [c["text"] for c in one["captions"]]
            assert [c["tokens"] for c in many["captions"]] == [c["tokens"] for c in one["captions"]]
            for a, b in zip(one["captions"], many["captions"], strict=True):
                assert b["log_probability"] == pytest.approx(a["log_probability"], abs=1e-4)


def test_greedy_options_and_limits(caption_server: LiveServer) -> None:
    jpeg, _ = scene_jpeg("test", 20, SEED)
    greedy = caption(caption_server, jpeg, beam_size=1, max_length=3).json()["results"][0]
    (only,) = greedy["captions"]
    assert 1 <= only["tokens"] <= 3 and len(tokenize(only["text"])) <= 3
    again = caption(caption_server, jpeg, beam_size=1, max_length=3).json()["results"][0]
    assert again == greedy  # deterministic
    for params, code in (
        ({"beam_size": 99}, 422),
        ({"max_length": 999}, 422),
        ({"beam_size": 2, "num_captions": 3}, 422),
        ({"beam_size": 0}, 422),
    ):
        r = caption(caption_server, jpeg, **params)
        assert r.status_code == code, (params, r.text)
    assert httpx.post(caption_server.url + "/v1/caption", timeout=30).status_code == 415


def test_step_level_batching_short_request_finishes_during_long_one(
    caption_server: LiveServer,
) -> None:
    """A 3-step greedy request sent while a big beam search decodes shares its decoder batches
    and returns while the big one keeps decoding: batching is per step, not per request."""
    decoder = caption_server.app.state.repository.get("captioner_decoder")
    batches: list[tuple[float, np.ndarray]] = []  # (time, features rows) per decoder batch
    original = decoder.model.run

    def recording_run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = original(feeds)
        batches.append((time.perf_counter(), feeds["features"]))
        return out

    long_images = [scene_jpeg("test", i, SEED)[0] for i in range(24)]
    short_image, _ = scene_jpeg("test", 30, SEED)
    times: dict[str, float] = {}

    def send_long() -> None:
        r = caption(caption_server, *long_images, beam_size=8, max_length=24)
        times["long_done"] = time.perf_counter()
        assert r.status_code == 200

    decoder.model.run = recording_run
    try:
        thread = threading.Thread(target=send_long)
        thread.start()
        while not batches:  # the long request is decoding
            time.sleep(0.001)
        r = caption(caption_server, short_image, beam_size=1, max_length=3)
        short_done = time.perf_counter()
        thread.join(timeout=120)
    finally:
        decoder.model.run = original
    assert r.status_code == 200, r.text
    assert short_done < times["long_done"]
    assert any(t > short_done for t, _ in batches), "the long request decoded after the short"
    # find the short request's rows by its image features: they shared batches with the long
    encoder = caption_server.app.state.repository.get("captioner")
    pixels = encoder.pipeline.preprocessor(short_image).tensor[None]
    mine = encoder.model.run({"pixels": pixels})["features"][0]
    is_short = [np.abs(f - mine).max(axis=(1, 2)) < 1e-4 for _, f in batches]
    steps = [m for m in is_short if m.any()]
    assert 1 <= len(steps) <= 3 and all(m.sum() == 1 for m in steps)  # greedy: 1 row a step
    assert any(not m.all() for m in steps), "no decoder batch mixed both requests"
