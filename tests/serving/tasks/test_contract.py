"""The task contract: option defaults resolve request > model config > server, models bind
their dependencies at load, and every live task response matches its OpenAPI schema."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import jsonschema
import yaml

from serving.settings import Settings
from serving.tasks.classify import ClassifyOptions
from serving.tasks.contract import resolve_options
from tests.conftest import MODEL_STORE
from tests.server import LiveServer


def _linked_copy(store: Path, name: str, **config_changes: dict) -> None:
    """A model folder whose ONNX files are links to the shipped ones, config edited."""
    source = MODEL_STORE / name
    target = store / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.onnx"))
    for onnx in source.glob("*/model.onnx"):
        (target / onnx.parent.name / "model.onnx").symlink_to(onnx)
    config = yaml.safe_load((target / "config.yaml").read_text())
    for section, values in config_changes.items():
        config[section] = {**config.get(section, {}), **values}
    (target / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_resolution_order_request_then_model_then_server() -> None:
    settings = Settings(default_timeout_ms=1234)
    model = {"top_k": 2, "timeout_ms": None}
    unset = resolve_options(ClassifyOptions(), model, settings)
    assert (unset.top_k, unset.timeout_ms) == (2, 1234)
    given = resolve_options(ClassifyOptions(top_k=7, timeout_ms=50), model, settings)
    assert (given.top_k, given.timeout_ms) == (7, 50)
    with_model_timeout = resolve_options(ClassifyOptions(), {"timeout_ms": 99}, settings)
    assert (with_model_timeout.top_k, with_model_timeout.timeout_ms) == (None, 99)


def test_model_config_defaults_are_honoured(tmp_path: Path, photos: dict[str, bytes]) -> None:
    _linked_copy(tmp_path, "mobilenet_v2", postprocess={"default_top_k": 2})
    _linked_copy(tmp_path, "vqa", batching={"default_timeout_ms": 0.001})
    _linked_copy(tmp_path, "vqa_encoder")
    with LiveServer(tmp_path) as srv:
        files = {"image": ("c.jpg", photos["chelsea"], "image/jpeg")}
        r = httpx.post(srv.url + "/v1/classify", files=files, timeout=30)
        assert r.status_code == 200, r.text
        assert len(r.json()["results"][0]["predictions"]) == 2  # the config's, not 5
        r = httpx.post(srv.url + "/v1/classify?top_k=4", files=files, timeout=30)
        assert len(r.json()["results"][0]["predictions"]) == 4  # the request wins
        ask = {"question": "what shape is in the image?"}
        r = httpx.post(srv.url + "/v1/vqa", files=files, data=ask, timeout=30)
        assert r.status_code == 504, r.text  # the model's 1 us deadline
        r = httpx.post(srv.url + "/v1/vqa?timeout_ms=30000", files=files, data=ask, timeout=30)
        assert r.status_code == 200, r.text
        assert len(r.json()["results"][0]["answers"]) == 3  # vqa's default_top_k


def test_dependencies_bind_at_load_and_recover(tmp_path: Path, photos: dict[str, bytes]) -> None:
    for name in ("captioner", "captioner_decoder"):
        _linked_copy(tmp_path, name)
    with LiveServer(tmp_path, load_models=["captioner"]) as srv:
        listed = httpx.get(srv.url + "/v1/models/captioner").json()
        assert listed["state"] == "failed"
        assert "captioner_decoder" in listed["reason"] and "decoder" in listed["reason"]
        files = {"image": ("c.jpg", photos["chelsea"], "image/jpeg")}
        r = httpx.post(srv.url + "/v1/caption", files=files, timeout=30)
        assert r.status_code == 503 and r.json()["code"] == "model_unavailable"
        loaded = httpx.post(srv.url + "/v2/repository/models/captioner_decoder/load", timeout=60)
        assert loaded.status_code == 200, loaded.text
        assert httpx.get(srv.url + "/v1/models/captioner").json()["state"] == "ready"
        r = httpx.post(srv.url + "/v1/caption", files=files, timeout=30)
        assert r.status_code == 200 and r.json()["results"][0]["captions"][0]["text"]
        httpx.post(srv.url + "/v2/repository/models/captioner_decoder/unload", timeout=60)
        gone = httpx.get(srv.url + "/v1/models/captioner").json()
        assert gone["state"] == "failed" and "unloaded" in gone["reason"]


def _response_schema(spec: dict, path: str, method: str = "post") -> dict:
    content = spec["paths"][path][method]["responses"]["200"]["content"]
    return {**content["application/json"]["schema"], "components": spec["components"]}


def test_live_responses_validate_against_openapi(photos: dict[str, bytes]) -> None:
    models = ["mobilenet_v2", "shapes_detector", "shapes_segmenter"]
    calls = [
        ("/v1/classify", {"top_k": 3}),
        ("/v1/detect", {"render": "true"}),
        ("/v1/segment", {}),
    ]
    with LiveServer(MODEL_STORE, load_models=models) as srv:
        spec = httpx.get(srv.url + "/openapi.json").json()
        files = {"image": ("c.jpg", photos["chelsea"], "image/jpeg")}
        for path, query in calls:
            r = httpx.post(srv.url + path, params=query, files=files, timeout=30)
            assert r.status_code == 200, r.text
            jsonschema.validate(r.json(), _response_schema(spec, path))  # raises on a mismatch
            operation = spec["paths"][path]["post"]
            params = {p["name"] for p in operation["parameters"]}
            assert {"model", "version", "timeout_ms", *query} <= params  # options documented
            codes = {"400", "404", "413", "415", "422", "503", "504"}
            assert codes <= set(operation["responses"])
