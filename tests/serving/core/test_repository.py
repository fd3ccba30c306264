"""The model repository through the live server: broken models, load/unload, new versions."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from tests.conftest import MODEL_STORE
from tests.models import write_model_folder
from tests.server import LiveServer


def infer(
    srv: LiveServer, model: str, values: list[float], version: str | None = None
) -> httpx.Response:
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    body = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, len(values)], "data": values}]
    }
    return httpx.post(srv.url + path, json=body, timeout=10)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    write_model_folder(tmp_path, "good", factor=2.0)
    bad_config = write_model_folder(tmp_path, "bad_config")
    (bad_config / "config.yaml").write_text("name: bad_config\ntask: tensor\n")
    missing = write_model_folder(tmp_path, "missing_onnx")
    (missing / "1" / "model.onnx").unlink()
    corrupt = write_model_folder(tmp_path, "corrupt_onnx")
    (corrupt / "1" / "model.onnx").write_bytes(b"\x08\x07garbage" * 100)
    write_model_folder(
        tmp_path, "wrong_io", inputs=[{"name": "pixels", "datatype": "FP32", "shape": [-1, 4]}]
    )
    return tmp_path


def test_broken_models_are_reported_and_good_ones_serve(store: Path) -> None:
    with LiveServer(store) as srv:
        models = {m["name"]: m for m in httpx.get(srv.url + "/v1/models").json()["models"]}
        assert models["good"]["state"] == "ready"
        reasons = {name: models[name]["reason"] for name in models if name != "good"}
        assert all(models[n]["state"] == "failed" for n in reasons)
        assert "inputs: Field required" in reasons["bad_config"]
        assert "does not exist" in reasons["missing_onnx"]
        assert "onnxruntime cannot load it" in reasons["corrupt_onnx"]
        assert "inputs differ from the config" in reasons["wrong_io"]
        r = infer(srv, "good", [1, 2, 3, 4])
        assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [2, 4, 6, 8]
        failed = infer(srv, "corrupt_onnx", [1, 2, 3, 4])
        assert failed.status_code == 503 and "failed" in failed.json()["error"]
        assert httpx.get(srv.url + "/readyz").status_code == 200


def test_new_version_load_and_unload_at_run_time(store: Path) -> None:
    with LiveServer(store, load_models=["good"]) as srv:
        assert infer(srv, "good", [1, 1, 1, 1]).json()["outputs"][0]["data"] == [2, 2, 2, 2]
        write_model_folder(store, "good", factor=2.0, versions=(1, 2))  # version 2 multiplies by 4
        r = httpx.post(srv.url + "/v2/repository/models/good/load")
        assert r.status_code == 200 and sorted(r.json()["versions"]) == ["1", "2"]
        assert infer(srv, "good", [1, 1, 1, 1]).json()["outputs"][0]["data"] == [4, 4, 4, 4]
        assert infer(srv, "good", [1, 1, 1, 1], "1").json()["outputs"][0]["data"] == [2, 2, 2, 2]
        assert (
            httpx.post(srv.url + "/v2/repository/models/good/unload").json()["state"] == "unloaded"
        )
        assert infer(srv, "good", [1, 1, 1, 1]).status_code == 503
        assert httpx.post(srv.url + "/v2/repository/models/good/load").status_code == 200
        assert infer(srv, "good", [1, 1, 1, 1]).status_code == 200
        index = httpx.post(srv.url + "/v2/repository/index").json()
        assert {"name": "good", "state": "READY"} in index
        assert httpx.post(srv.url + "/v2/repository/models/nope/load").status_code == 404


def test_admin_token_guards_load_and_unload(store: Path) -> None:
    with LiveServer(store, load_models=["good"], admin_token="s3cret") as srv:
        denied = httpx.post(srv.url + "/v2/repository/models/good/unload")
        assert denied.status_code == 401 and denied.json()["code"] == "unauthorized"
        ok = httpx.post(
            srv.url + "/v2/repository/models/good/unload",
            headers={"Authorization": "Bearer s3cret"},
        )
        assert ok.status_code == 200


def test_overloaded_model_answers_503_with_retry_after(tmp_path: Path) -> None:
    # Admission lets four rows in flight, so the fourth request passes the door and meets the
    # batcher's own bound: two rows queued behind the one running.
    write_model_folder(
        tmp_path,
        "tiny_queue",
        batching={"max_batch_size": 1, "max_queue_size": 2, "max_in_flight": 4},
    )
    with LiveServer(tmp_path) as srv:
        url = srv.url + "/v2/models/tiny_queue/infer"
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 4], "data": [0] * 12}]}
        r = httpx.post(url, json=body)
        assert r.status_code == 400 and r.json()["code"] == "batch_too_large"
        # Hold the runner so the queue fills deterministically.
        version = srv.app.state.repository.get("tiny_queue")
        gate, real_run = threading.Event(), version.batcher._run
        version.batcher._run = lambda rows: (gate.wait(10), real_run(rows))[1]
        one = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1] * 4}]}
        with ThreadPoolExecutor(3) as pool:
            held = [pool.submit(httpx.post, url, json=one, timeout=20) for _ in range(3)]
            deadline = time.monotonic() + 10
            while version.batcher.queue_depth < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            rejected = httpx.post(url, json=one, timeout=5)
            gate.set()
            assert [f.result().status_code for f in held] == [200, 200, 200]
        assert rejected.status_code == 503 and rejected.headers["retry-after"] == "1"
        assert rejected.json()["code"] == "overloaded" and "queue full" in rejected.json()["error"]
        assert infer(srv, "tiny_queue", [1, 2, 3, 4]).json()["outputs"][0]["data"] == [2, 4, 6, 8]


def test_classifier_with_labels_mismatch_fails_cleanly(tmp_path: Path) -> None:
    shutil.copytree(MODEL_STORE / "mobilenet_v2", tmp_path / "mobilenet_v2")
    (tmp_path / "mobilenet_v2" / "labels.txt").write_text("just\nthree\nlabels\n")
    with LiveServer(tmp_path) as srv:
        entry = httpx.get(srv.url + "/v1/models/mobilenet_v2").json()
        assert entry["state"] == "failed" and "3 labels for 1000 classes" in entry["reason"]
        r = httpx.post(
            srv.url + "/v1/classify", content=b"x", headers={"content-type": "image/jpeg"}
        )
        assert r.status_code == 503 and r.json()["code"] == "model_unavailable"


def test_default_version_from_config(tmp_path: Path) -> None:
    folder = write_model_folder(tmp_path, "m", versions=(1, 2))
    doc = yaml.safe_load((folder / "config.yaml").read_text())
    doc["default_version"] = 1
    (folder / "config.yaml").write_text(yaml.safe_dump(doc))
    with LiveServer(tmp_path) as srv:
        out = infer(srv, "m", [1, 0, 0, 0]).json()["outputs"][0]
        assert np.allclose(out["data"], [2, 0, 0, 0])


def test_intra_op_threads_setting_overrides_every_model_config(tmp_path: Path) -> None:
    folder = write_model_folder(tmp_path, "good", factor=2.0)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["runtime"]["intra_op_threads"] = 2  # the model asks for 2; the process has 1 CPU
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    with LiveServer(tmp_path, intra_op_threads=1) as srv:
        repo = srv.app.state.repository
        version = repo.get("good")
        assert version.config.runtime.intra_op_threads == 1
        options = version.model.session.get_session_options()
        assert options.intra_op_num_threads == 1
        assert infer(srv, "good", [1, 2, 3, 4]).json()["outputs"][0]["data"] == [2, 4, 6, 8]


def test_cpu_batch_cap_reaches_the_batcher(tmp_path: Path) -> None:
    write_model_folder(tmp_path, "capped", batching={"max_batch_size": 32, "cpu_max_batch_size": 2})
    with LiveServer(tmp_path) as srv:
        version = srv.app.state.repository.get("capped")
        assert version.batcher.policy.max_batch_size == 2
        with ThreadPoolExecutor(8) as pool:
            outs = list(pool.map(lambda i: infer(srv, "capped", [i, 0, 0, 0]), range(8)))
        assert [o.json()["outputs"][0]["data"][0] for o in outs] == [2.0 * i for i in range(8)]
        assert max(version.recorder.stats.batches) <= 2  # every batch run had at most 2 rows
