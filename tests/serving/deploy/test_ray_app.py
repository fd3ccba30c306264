"""Fovea on Ray Serve across a two-node local Ray cluster (loopback only, bounded, cleaned up).

One module-scoped cluster (head + worker node, 2 logical CPUs each) runs the Serve config of
``serving/deploy/ray.yaml`` with two replicas and only mobilenet_v2 loaded; the last test
switches the same deployment to autoscaling (a lightweight config update). The failure figures
are printed (``-s``); the node-removal case is measured in ``loadtest/benchmarks/ray_serve.py``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import MODEL_STORE, ROOT
from tests.server import LiveServer, free_port
from tests.serving.deploy.load import Load

ray = pytest.importorskip("ray", reason="the Ray tests need the optional extra: pip install .[ray]")
serve = pytest.importorskip("ray.serve")

from serving.deploy import local_cluster, ray_deploy  # noqa: E402

BASE_PORT = 9200  # Ray's own ports: 9200-9239 (see local_cluster.node_ports)
SETTINGS = {"load_models": ["mobilenet_v2"], "intra_op_threads": 1, "decode_threads": 1}
APP = "fovea"


def config(tmp: Path, http_port: int, **deployment: Any) -> dict[str, Any]:
    cfg = ray_deploy.load_config(ROOT / "serving/deploy/ray.yaml")
    cfg["http_options"] = {"host": "127.0.0.1", "port": http_port}
    app = cfg["applications"][0]
    app["args"]["settings"] |= SETTINGS | {
        "model_store": str(MODEL_STORE),
        "face_gallery_dir": str(tmp / "gallery"),
        "collections_dir": str(tmp / "collections"),
    }
    fovea = app["deployments"][0]
    for key in ("autoscaling_config", "num_replicas"):
        fovea.pop(key, None)
    fovea |= deployment
    return ray_deploy.resolve(cfg, ROOT)


def fovea_status() -> Any:
    return serve.status().applications[APP].deployments["Fovea"]


def running_replicas() -> int:
    return fovea_status().replica_states.get("RUNNING", 0)


def wait_until(predicate: Any, timeout_s: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"not {what} after {timeout_s} s: {fovea_status()}")
        time.sleep(0.25)
    return time.monotonic() - start


def replica_pids() -> dict[str, int]:
    """Live Fovea replicas by Serve replica id -> process id (from the GCS actor table)."""
    from ray._private import state

    out = {}
    for actor in state.actors().values():
        if actor["State"] == "ALIVE" and actor["Name"].startswith(f"SERVE_REPLICA::{APP}#Fovea#"):
            out[actor["Name"].rsplit("#", 1)[1]] = actor["Pid"]
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("ray")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
    )  # replicas import this checkout's `serving`, not another installed copy
    nodes = local_cluster.start([2, 2], BASE_PORT)
    try:
        local_cluster.connect(nodes)
        port = free_port()
        ray_deploy.deploy(config(tmp, port, num_replicas=2), timeout_s=240)
        yield {"url": f"http://127.0.0.1:{port}", "tmp": tmp, "port": port}
    finally:
        serve.shutdown()
        ray.shutdown()
        nodes.shutdown()


def redeploy(cluster: dict[str, Any], **deployment: Any) -> None:
    ray_deploy.deploy(config(cluster["tmp"], cluster["port"], **deployment), timeout_s=240)


def v2_input(photo: bytes) -> dict[str, Any]:
    """The photo as MobileNetV2's input tensor (224x224, ImageNet normalisation)."""
    import io

    img = Image.open(io.BytesIO(photo)).convert("RGB").resize((224, 224))
    x = (np.asarray(img, np.float32) / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    x = x.transpose(2, 0, 1)[None].astype(np.float32)
    return {
        "inputs": [
            {
                "name": "pixels",
                "shape": list(x.shape),
                "datatype": "FP32",
                "data": x.ravel().tolist(),
            }
        ]
    }


def test_replicas_answer_like_one_process_and_share_the_load(
    cluster: dict[str, Any], photos: dict[str, bytes]
) -> None:
    url = cluster["url"]
    with LiveServer(MODEL_STORE, **SETTINGS) as single, httpx.Client(timeout=60) as client:
        for name in ("chelsea", "coffee"):
            files = {"images": (f"{name}.jpg", photos[name], "image/jpeg")}
            ours = client.post(url + "/v1/classify", files=files, params={"top_k": 5})
            ref = client.post(single.url + "/v1/classify", files=files, params={"top_k": 5})
            assert ours.status_code == ref.status_code == 200
            assert ours.json() == ref.json()
            body = v2_input(photos[name])
            ours = client.post(url + "/v2/models/mobilenet_v2/infer", json=body)
            ref = client.post(single.url + "/v2/models/mobilenet_v2/infer", json=body)
            assert ours.status_code == ref.status_code == 200
            assert ours.json()["outputs"] == ref.json()["outputs"]
        assert client.get(url + "/v2/health/ready").status_code == 200
        assert "fovea_" in client.get(url + "/metrics").text
    assert running_replicas() == 2
    with Load(url, photos["chelsea"], workers=6, max_s=60) as load:
        wait_until(
            lambda: len(load.replicas()) == 2 and min(load.replicas().values()) >= 5,
            60,
            "answered by both replicas",
        )
    assert load.failed() == 0
    assert set(load.replicas()) == set(replica_pids())


def test_load_and_unload_reach_every_replica(cluster: dict[str, Any]) -> None:
    url = cluster["url"]
    with httpx.Client(timeout=90) as client:
        r = client.post(url + "/v2/repository/models/mobilenet_v2/unload")
        assert r.status_code == 200
        states = json.loads(r.headers["x-fovea-replicas"])
        assert states == dict.fromkeys(replica_pids(), "unloaded")
        seen = {}
        for _ in range(40):  # whichever replica answers, the model is unloaded there
            r = client.get(url + "/v1/models/mobilenet_v2")
            seen[r.headers["x-fovea-replica"]] = r.json()["state"]
        assert seen == dict.fromkeys(replica_pids(), "unloaded")
        r = client.post(url + "/v2/repository/models/mobilenet_v2/load")
        assert r.status_code == 200
        states = json.loads(r.headers["x-fovea-replicas"])
        assert states == dict.fromkeys(replica_pids(), "ready")
        r = client.post(url + "/v2/repository/models/no_such_model/load")
        assert r.status_code == 404 and "x-fovea-replicas" not in r.headers


FACE_MODELS = ("mtcnn_rnet", "mtcnn_onet", "mtcnn", "facenet_msceleb")  # dependencies first


def test_gallery_enrolment_on_one_replica_is_seen_by_the_other(
    cluster: dict[str, Any], photos: dict[str, bytes]
) -> None:
    url = cluster["url"]
    replicas = set(replica_pids())
    with httpx.Client(timeout=120) as client:
        for model in FACE_MODELS:  # loaded on every replica through the broadcast
            r = client.post(url + f"/v2/repository/models/{model}/load")
            assert r.status_code == 200, r.text
            assert json.loads(r.headers["x-fovea-replicas"]) == dict.fromkeys(replicas, "ready")
        try:
            files = {"images": ("astronaut.jpg", photos["astronaut"], "image/jpeg")}
            r = client.post(url + "/v1/faces/gallery/eileen", files=files)
            assert r.status_code == 200, r.text
            enrolled_by = r.headers["x-fovea-replica"]
            seen = {}
            for _ in range(60):  # until each replica has answered at least once
                r = client.get(url + "/v1/faces/gallery")
                seen[r.headers["x-fovea-replica"]] = r.json()["identities"]
                if set(seen) == replicas:
                    break
            assert set(seen) == replicas and enrolled_by in seen
            assert all(ids == [{"identity": "eileen", "photos": 1}] for ids in seen.values())
        finally:
            client.delete(url + "/v1/faces/gallery/eileen")
            for model in FACE_MODELS:
                client.post(url + f"/v2/repository/models/{model}/unload")


def test_killed_replica_is_replaced(cluster: dict[str, Any], photos: dict[str, bytes]) -> None:
    wait_until(lambda: running_replicas() == 2 and len(replica_pids()) == 2, 90, "2 replicas")
    before = replica_pids()
    victim, pid = sorted(before.items())[0]
    with Load(cluster["url"], photos["chelsea"], workers=4, max_s=120) as load:
        time.sleep(2)
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        recovery = wait_until(
            lambda: (
                running_replicas() == 2
                and len(replica_pids()) == 2
                and victim not in replica_pids()
            ),
            100,
            "replaced the killed replica",
        )
        time.sleep(2)  # traffic after recovery must all succeed
        after_recovery = time.monotonic()
        time.sleep(3)
    failed = load.failed(since=killed)
    total = len(load.outcomes)
    print(
        f"\nSIGKILL of replica {victim}: {failed} of {total} requests failed; "
        f"replaced and RUNNING after {recovery:.1f} s"
    )
    assert load.failed(since=after_recovery) == 0
    assert fovea_status().status == "HEALTHY"
    assert len(load.replicas()) >= 2


def test_autoscaling_grows_under_load_and_shrinks_after(
    cluster: dict[str, Any], photos: dict[str, bytes]
) -> None:
    redeploy(
        cluster,
        autoscaling_config={
            "min_replicas": 1,
            "max_replicas": 2,
            "initial_replicas": 1,
            "target_ongoing_requests": 1,
            "upscale_delay_s": 1,
            "downscale_delay_s": 3,
            "look_back_period_s": 2,
        },
    )
    wait_until(lambda: running_replicas() == 1, 60, "down to 1 replica at rest")
    with Load(cluster["url"], photos["chelsea"], workers=6, max_s=90) as load:
        grew = wait_until(lambda: running_replicas() == 2, 80, "scaled to 2 replicas")
    assert load.failed() == 0
    # A trickle of traffic while a replica is removed: it drains, so nothing fails.
    with Load(cluster["url"], photos["chelsea"], workers=1, max_s=70) as trickle:
        shrank = wait_until(lambda: running_replicas() == 1, 60, "scaled back to 1 replica")
    print(f"\nautoscaling: 1->2 replicas {grew:.1f} s into the load, 2->1 {shrank:.1f} s after it")
    assert trickle.failed() == 0 and len(trickle.outcomes) > 0
