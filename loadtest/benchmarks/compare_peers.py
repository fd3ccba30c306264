"""Fovea beside raw ONNX Runtime and a well-known peer (LitServe), measured in one run.

    python -m loadtest.benchmarks.compare_peers [--concurrency 1,4,16] [--json out.json]

Every HTTP variant is driven by ``fovea loadtest`` (closed loop, base64 JSON bodies of
scikit-image's photos, one image per request) and serves the same ONNX file:

* raw ORT: in-process, no HTTP -- Fovea's own decode + preprocess + ``session.run``, one image at
  a time: the work every request costs, with nothing around it;
* fovea: ``fovea serve`` over the model store as shipped (dynamic batching on);
* fovea, no batching: the same over a temporary store copy with ``max_batch_size: 1``;
* litserve: LitServe with its own batching (``max_batch_size`` 32, ``batch_timeout`` 2 ms), from
  a separate virtual environment (``--peer-python``; create it with
  ``python -m venv /work/cache/peer-venv && /work/cache/peer-venv/bin/pip install litserve
  onnxruntime pillow numpy``). Skipped, and said so, when that interpreter is missing.

Servers run as child processes on free loopback ports and are stopped after their turn.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import numpy as np
import yaml

from loadtest import payloads
from loadtest.cli import main as loadtest
from loadtest.report import format_table
from loadtest.stats import latency_summary

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "model_store"
MODEL = "mobilenet_v2"
PEER = Path(__file__).with_name("litserve_peer.py")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_ort(seconds: float) -> dict[str, Any]:
    from serving.core.config import load_config
    from serving.core.runtime import OnnxModel
    from serving.imaging.preprocess import ImagePreprocessor

    config = load_config(STORE / MODEL / "config.yaml")
    model = OnnxModel(STORE / MODEL / "1" / "model.onnx", config)
    assert config.preprocess is not None
    pre = ImagePreprocessor(config.preprocess, max_pixels=10**8)
    photos = payloads.sample_photos()
    for photo in photos:  # warm-up
        model.run({"pixels": pre(photo.data).tensor[None]})
    latencies, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds:
        photo = photos[len(latencies) % len(photos)]
        t = time.perf_counter()
        model.run({"pixels": pre(photo.data).tensor[None]})
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    lat = latency_summary(np.asarray(latencies))
    assert lat is not None
    return {"variant": "raw ORT (in-process)", "concurrency": 1,
            "req_s": len(latencies) / elapsed, "img_s": len(latencies) / elapsed,
            "p50_ms": lat.p50, "p99_ms": lat.p99, "errors": 0.0, "batch": 1.0,
            "client_cpu": None}


@contextlib.contextmanager
def process(cmd: list[str], ready_url: str, timeout_s: float = 120) -> Iterator[None]:
    """A server child process (own process group, so its workers stop with it)."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            _wait_ready(proc, log, ready_url, timeout_s)
            yield
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], log: IO[bytes], url: str, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{proc.args!r} exited: {log.read()[-2000:].decode()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > end:
            raise TimeoutError(f"{url} not ready after {timeout_s} s")
        time.sleep(0.2)


def fovea(store: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "serving.cli", "serve", "--port", str(port),
            "--model-store", str(store), "--log-level", "warning"]


def unbatched_store(tmp: Path) -> Path:
    store = tmp / "store"
    shutil.copytree(STORE / MODEL, store / MODEL)
    config_path = store / MODEL / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["batching"]["max_batch_size"] = 1
    config["batching"].pop("preferred_batch_sizes", None)
    config["runtime"]["warmup_batch_sizes"] = [1]
    config_path.write_text(yaml.safe_dump(config))
    return store


def drive(variant: str, url: str, args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    out = tmp / f"{variant.replace(' ', '_').replace(',', '')}.json"
    argv = [url, "-c", args.concurrency, "--encoding", "json", "--no-progress",
            "--warmup", str(args.warmup), "--window", str(args.window),
            "--max-windows", str(args.max_windows), "--json", str(out)]
    print(f"\n== {variant}: fovea loadtest {' '.join(argv[:-2])}", flush=True)
    if loadtest(argv) != 0:
        raise RuntimeError(f"load test of {variant} failed")
    rows = []
    for step in json.loads(out.read_text())["steps"]:
        t = step["total"]
        lat = t["latency_ms"] or {}
        rows.append({
            "variant": variant, "concurrency": step["target"], "req_s": t["throughput"],
            "img_s": t["images_per_s"], "p50_ms": lat.get("p50"), "p99_ms": lat.get("p99"),
            "errors": t["error_rate"], "batch": (t["server"] or {}).get("batch_size"),
            "client_cpu": t["client_cpu"], "stable": step["stable"], "warnings": step["warnings"],
        })
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    def num(v: float | None, fmt: str = ".1f") -> str:
        return "-" if v is None else format(v, fmt)

    raw = rows[0]["img_s"]
    headers = ["variant", "concurrency", "img/s", "x raw", "p50 ms", "p99 ms", "errors",
               "srv batch", "gen cpu"]
    body = [[r["variant"] + ("" if r.get("stable", True) else " *"), f"{r['concurrency']:g}",
             num(r["img_s"]), num(r["img_s"] / raw, ".2f"), num(r["p50_ms"]), num(r["p99_ms"]),
             f"{r['errors']:.1%}", num(r["batch"], ".2f"), num(r["client_cpu"], ".0%")]
            for r in rows]
    return format_table(headers, body)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", default="1,4,16", help="closed-loop levels for every server")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--window", type=float, default=3.0)
    p.add_argument("--max-windows", type=int, default=3)
    p.add_argument("--raw-seconds", type=float, default=6.0)
    p.add_argument("--peer-python", type=Path, default=Path("/work/cache/peer-venv/bin/python"))
    p.add_argument("--json", type=Path, default=Path(tempfile.gettempdir()) / "compare_peers.json")
    args = p.parse_args(argv)
    started = time.monotonic()
    rows = [raw_ort(args.raw_seconds)]
    skipped = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        variants = [("fovea", STORE), ("fovea, no batching", unbatched_store(tmp))]
        for name, store in variants:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            with process(fovea(store, port), url + "/v2/health/ready"):
                rows += drive(name, url, args, tmp)
        if args.peer_python.exists():
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            cmd = [str(args.peer_python), str(PEER), "--port", str(port),
                   "--model", str(STORE / MODEL / "1" / "model.onnx"),
                   "--labels", str(STORE / MODEL / "labels.txt")]
            with process(cmd, url + "/health"):
                rows += drive("litserve", url, args, tmp)
        else:
            skipped.append(f"litserve: no interpreter at {args.peer_python}")
    print(f"\n{MODEL}, {os.cpu_count()} CPU cores, one image per request, "
          f"total {time.monotonic() - started:.0f} s")
    print(table(rows))
    if any(not r.get("stable", True) for r in rows):
        print("* throughput not stable within 10 % over the last windows (see the JSON)")
    for line in skipped:
        print("skipped:", line)
    args.json.write_text(json.dumps({"model": MODEL, "cpus": os.cpu_count(),
                                     "concurrency": args.concurrency, "rows": rows,
                                     "skipped": skipped}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
