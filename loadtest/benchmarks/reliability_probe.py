"""The reliability issue's probes, run against the server code of any checkout, side by side.

    python -m loadtest.benchmarks.reliability_probe --root /tmp/fovea-before --root . \\
        [--json out.json]

Each ``--root`` is a source tree whose ``serving`` package is started as a real
``python -m serving.cli serve`` process on a free loopback port (``PYTHONPATH=<root>``), over
the root's own model store (or a generated one-model store for reload/shutdown probes), and
stopped. Every probe is bounded in time. Settings a root does not know are ignored by it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from PIL import Image

HERE = Path(__file__).resolve().parents[2]
TENSOR = orjson.dumps(
    {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
)
HEAD = (
    b"POST /v2/models/scale/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(TENSOR)
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(root: Path, store: Path, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    environ = {
        **os.environ,
        "PYTHONPATH": str(root),
        "FOVEA_MODEL_STORE": str(store),
        "FOVEA_PORT": str(port),
        "FOVEA_LOG_LEVEL": "error",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving.cli", "serve"],
        cwd=root,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def tiny_store(folder: Path, factor: float = 2.0) -> Path:
    from tests.models import write_model_folder

    write_model_folder(folder, "scale", factor=factor)
    return folder


def connect(url: str, data: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(data)
    return sock


def answer(sock: socket.socket, timeout_s: float) -> tuple[int | None, bool]:
    """(HTTP status or None, whether the server closed the connection) within ``timeout_s``."""
    raw, end = b"", time.monotonic() + timeout_s
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while (left := end - time.monotonic()) > 0:
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                sock.close()
                return (int(raw[9:12]) if raw.startswith(b"HTTP/1.1 ") else None), True
            raw += chunk
    sock.close()
    return (int(raw[9:12]) if raw.startswith(b"HTTP/1.1 ") else None), False


def rss_peak_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(next(ln for ln in f if ln.startswith("VmHWM")).split()[1]) / 1024


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# -- probes ----------------------------------------------------------------------------------------
def amplification(root: Path, _: Path) -> dict[str, Any]:
    data = png(1, 6000)
    with serve(root, root / "model_store", FOVEA_LOAD_MODELS='["mobilenet_v2"]') as (proc, url):
        headers = {"Content-Type": "image/png"}
        httpx.post(url + "/v1/classify", content=png(300, 200), headers=headers, timeout=60)
        with open(f"/proc/{proc.pid}/clear_refs", "w") as f:
            f.write("5")
        before = rss_peak_mb(proc.pid)
        started = time.perf_counter()
        r = httpx.post(url + "/v1/classify", content=data, headers=headers, timeout=120)
        seconds = time.perf_counter() - started
        return {
            "bytes": len(data),
            "status": r.status_code,
            "ms": round(seconds * 1000, 1),
            "peak_rss_growth_mb": round(rss_peak_mb(proc.pid) - before, 1),
        }


def slow_clients(root: Path, tmp: Path) -> dict[str, Any]:
    env = {"FOVEA_HEADER_TIMEOUT_S": "2", "FOVEA_BODY_TIMEOUT_S": "2"}
    with serve(root, tiny_store(tmp / "slow"), **env) as (_, url):
        heads = [connect(url, HEAD[:40]) for _ in range(25)]
        bodies = [connect(url, HEAD + TENSOR[:10]) for _ in range(25)]
        ok = sum(
            httpx.post(url + "/v2/models/scale/infer", content=TENSOR, timeout=10).status_code
            == 200
            for _ in range(20)
        )
        time.sleep(2.5)
        head_results = [answer(s, 6) for s in heads]
        body_results = [answer(s, 1) for s in bodies]
    return {
        "others_ok": f"{ok}/20",
        "slow_headers_closed": f"{sum(c for _, c in head_results)}/25",
        "slow_headers_408": f"{sum(s == 408 for s, _ in head_results)}/25",
        "slow_bodies_closed": f"{sum(c for _, c in body_results)}/25",
        "slow_bodies_408": f"{sum(s == 408 for s, _ in body_results)}/25",
    }


def _decoder(token: Any) -> dict[str, Any]:
    zeros = {
        "h": [1, 384],
        "c": [1, 384],
        "features": [1, 49, 256],
        "keys": [1, 49, 256],
    }
    inputs = [{"name": "token", "datatype": "INT64", "shape": [1], "data": [token]}]
    for name, shape in zeros.items():
        count = 1
        for d in shape:
            count *= d
        inputs.append({"name": name, "datatype": "FP32", "shape": shape, "data": [0.0] * count})
    return {"inputs": inputs}


def _pixels(shape: list[int], value: Any = 0.0) -> dict[str, Any]:
    count = shape[0] * shape[1] * shape[2] * shape[3]
    return {
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": shape, "data": [value] * count}]
    }


def v2_mutations(root: Path, _: Path) -> dict[str, Any]:
    cases = {
        "mtcnn [1,3,2,2]": ("mtcnn", _pixels([1, 3, 2, 2])),
        "mtcnn [1,3,0,5]": ("mtcnn", _pixels([1, 3, 0, 5])),
        "mtcnn [1,3,5,0]": ("mtcnn", _pixels([1, 3, 5, 0])),
        "mtcnn [2,3,1,1]": ("mtcnn", _pixels([2, 3, 1, 1])),
        "decoder token 1e38": ("captioner_decoder", _decoder(1e38)),
        "decoder token 1e6": ("captioner_decoder", _decoder(10**6)),
        "decoder token -1e6": ("captioner_decoder", _decoder(-(10**6))),
        "decoder token 9.2e18": ("captioner_decoder", _decoder(9.2e18)),
        "mtcnn data 'NaN'": ("mtcnn", _pixels([1, 3, 12, 12], "NaN")),
    }
    models = '["mtcnn", "mtcnn_rnet", "mtcnn_onet", "captioner", "captioner_decoder"]'
    statuses = {}
    with serve(root, root / "model_store", FOVEA_LOAD_MODELS=models) as (_, url):
        for case, (model, body) in cases.items():
            r = httpx.post(f"{url}/v2/models/{model}/infer", json=body, timeout=60)
            statuses[case] = r.status_code
    return {
        "5xx": sum(s >= 500 for s in statuses.values()),
        "cases": len(statuses),
        "statuses": statuses,
    }


def hitless_reload(root: Path, tmp: Path) -> dict[str, Any]:
    store = tiny_store(tmp / "reload")
    model = store / "scale" / "1" / "model.onnx"
    from tests.models import scale_model

    with serve(root, store) as (_, url):
        statuses: list[int] = []
        stop = threading.Event()

        def client() -> None:
            with httpx.Client(timeout=20) as http:
                while not stop.is_set():
                    statuses.append(
                        http.post(url + "/v2/models/scale/infer", content=TENSOR).status_code
                    )

        # Requests that resolved the old version and submit after the swap: a body in flight.
        pending = [connect(url, HEAD + TENSOR[:10]) for _ in range(5)]
        time.sleep(0.3)
        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        for i, factor in enumerate((3.0, 4.0, 5.0, 6.0, 7.0)):
            time.sleep(0.3)
            scale_model(model, factor=factor)
            loader = threading.Thread(
                target=httpx.post,
                args=(url + "/v2/repository/models/scale/load",),
                kwargs={"timeout": 30},
            )
            loader.start()
            if i == 0:
                time.sleep(0.5)
                for sock in pending:
                    sock.sendall(TENSOR[10:])
                statuses.extend(answer(s, 10)[0] or 0 for s in pending)
            loader.join(timeout=30)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    failed = [s for s in statuses if s != 200]
    return {
        "requests": len(statuses),
        "failed": len(failed),
        "failed_statuses": sorted(set(failed)),
    }


def shutdown(root: Path, tmp: Path) -> dict[str, Any]:
    env = {"FOVEA_GRACEFUL_SHUTDOWN_S": "2"}
    with serve(root, tiny_store(tmp / "shutdown"), **env) as (proc, url):
        finishing = [connect(url, HEAD + TENSOR[:10]) for _ in range(8)]
        endless = connect(url, HEAD + TENSOR[:10])
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        for sock in finishing:
            sock.sendall(TENSOR[10:])
        answered = sum(answer(s, 10)[0] == 200 for s in finishing)
        cut_status, _ = answer(endless, 15)
        code = proc.wait(timeout=30)
    return {"in_flight_answered": f"{answered}/8", "cut_request": cut_status, "exit": code}


def auth(root: Path, tmp: Path) -> dict[str, Any]:
    token = "admin-token-e4b1c8d27f60"
    with serve(root, tiny_store(tmp / "auth"), FOVEA_ADMIN_TOKEN=token) as (_, url):
        infer = httpx.post(url + "/v2/models/scale/infer", content=TENSOR).status_code
        forget = httpx.delete(url + "/v1/faces/gallery/alice").status_code
        no_scheme = httpx.post(
            url + "/v2/repository/models/scale/unload", headers={"Authorization": token}
        ).status_code
    missing = tmp / "reasons"
    tiny_store(missing)
    (missing / "scale" / "1" / "model.onnx").unlink()
    with serve(root, missing) as (_, url):
        reason = httpx.get(url + "/v1/models").json()["models"][0]["reason"]
    return {
        "infer_without_key (admin token only)": infer,
        "gallery_delete_without_key": forget,
        "unload_with_token_without_Bearer": no_scheme,
        "failure_reason_shows_server_path": str(tmp) in reason,
    }


def small_things(root: Path, tmp: Path) -> dict[str, Any]:
    doc = {f"k{i}": i for i in range(200_000)}
    doc["images"] = ["AAAA"]
    body = orjson.dumps(doc)
    models = '["mobilenet_v2", "vqa"]'
    with serve(root, root / "model_store", FOVEA_LOAD_MODELS=models) as (_, url):
        started = time.perf_counter()
        r = httpx.post(
            url + "/v1/classify",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        keys = {
            "status": r.status_code,
            "ms": round((time.perf_counter() - started) * 1000),
            "response_bytes": len(r.content),
        }
        photo = io.BytesIO()
        Image.new("RGB", (64, 64), (10, 200, 10)).save(photo, format="PNG")
        files = {
            "image": ("x.png", photo.getvalue(), "image/png"),
            "question": (None, b"what colour is the shape\xff?"),
        }
        utf8 = httpx.post(url + "/v1/vqa", files=files, timeout=60).status_code
        allow = httpx.put(url + "/v1/faces/gallery/alice").headers.get("allow")
        live = httpx.get(url + "/v2/health/live").content.decode()
    return {
        "200k_keys": keys,
        "vqa_invalid_utf8_question": utf8,
        "gallery_405_allow": allow,
        "v2_health_live_body": live or "(empty)",
    }


PROBES: dict[str, Callable[[Path, Path], dict[str, Any]]] = {
    "amplification (110 B 1x6000 PNG)": amplification,
    "slow headers / bodies": slow_clients,
    "v2 mutations": v2_mutations,
    "reload under load": hitless_reload,
    "SIGTERM with 9 in flight": shutdown,
    "auth and reasons": auth,
    "small things": small_things,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, action="append", required=True)
    parser.add_argument("--only", help="run only probes whose name contains this")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    results: dict[str, dict[str, Any]] = {}
    for name, probe in PROBES.items():
        if args.only and args.only not in name:
            continue
        for root in args.root:
            with tempfile.TemporaryDirectory() as tmp:
                results.setdefault(name, {})[str(root)] = probe(root.resolve(), Path(tmp))
            print(f"{name} [{root}]: {json.dumps(results[name][str(root)])}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
