"""Served vs raw ONNX Runtime, batching on vs off, measured side by side in one run.

    python -m loadtest.benchmarks.batching [--seconds 8] [--concurrency 16] [--json out.json]

For each server variant a real ``fovea serve`` process is started on a free loopback port over a
temporary copy of the model store (only ``batching.max_batch_size`` differs), driven by
``--concurrency`` closed-loop clients for ``--seconds``, and stopped. Raw ONNX Runtime runs
in-process on the same model at batch sizes 1, 8 and 32, with and without the image decode +
preprocess step, so the table shows where served throughput goes.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
MODEL = "mobilenet_v2"


def photo_jpeg() -> bytes:
    import skimage.data
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(skimage.data.chelsea()).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def raw_ort(seconds: float, jpeg: bytes) -> list[dict[str, object]]:
    from serving.core.config import load_config
    from serving.core.runtime import OnnxModel
    from serving.imaging.preprocess import ImagePreprocessor

    config = load_config(ROOT / "model_store" / MODEL / "config.yaml")
    model = OnnxModel(ROOT / "model_store" / MODEL / "1" / "model.onnx", config)
    assert config.preprocess is not None
    pre = ImagePreprocessor(config.preprocess, max_pixels=10**8)
    rows = []
    for batch in (1, 8, 32):
        x = np.stack([pre(jpeg).tensor] * batch)
        model.run({"pixels": x})
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            model.run({"pixels": x})
            n += batch
        rows.append(
            {"variant": f"raw ORT, batch {batch}", "images_s": n / (time.perf_counter() - start)}
        )
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds / 3:
        pre(jpeg)
        n += 1
    decode_s = n / (time.perf_counter() - start)
    rows.append({"variant": "decode+preprocess only, 1 thread", "images_s": decode_s})
    return rows


def make_store(max_batch: int, into: Path) -> Path:
    store = into / f"store_b{max_batch}"
    shutil.copytree(ROOT / "model_store" / MODEL, store / MODEL)
    path = store / MODEL / "config.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["batching"]["max_batch_size"] = max_batch
    doc["batching"]["cpu_max_batch_size"] = max_batch  # the variant is the batch size served
    doc["runtime"]["warmup_batch_sizes"] = [1, max_batch]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return store


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(store: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving.cli",
            "serve",
            "--port",
            str(port),
            "--model-store",
            str(store),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become ready")


async def drive(
    url: str, body: bytes, path: str, headers: dict[str, str], concurrency: int, seconds: float
) -> dict[str, float]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    cpu_start = time.process_time()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def client(until: float, record: bool) -> None:
            nonlocal errors
            while time.perf_counter() < until:
                t0 = time.perf_counter()
                async with http.post(url + path, data=body, headers=headers) as r:
                    await r.read()
                    ok = r.status == 200
                if record:
                    if ok:
                        latencies.append(time.perf_counter() - t0)
                    else:
                        errors += 1

        warm = time.perf_counter() + 1.0
        await asyncio.gather(*(client(warm, False) for _ in range(concurrency)))
        start = time.perf_counter()
        await asyncio.gather(*(client(start + seconds, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    # The load generator shares the 2 cores with the server: report the share it took.
    client_cpu = (time.process_time() - cpu_start) / (elapsed + 1.0)
    return {
        "images_s": len(lat) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "errors": errors,
        "client_cpu": client_cpu,
    }


def v2_body() -> tuple[bytes, dict[str, str]]:
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32).tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "pixels",
                    "shape": [1, 3, 224, 224],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(x)},
                }
            ],
            "outputs": [{"name": "logits", "parameters": {"binary_data": True}}],
        }
    ).encode()
    return header + x, {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
    }


def served(
    seconds: float, concurrency: int, jpeg: bytes, tmp: Path, max_batches: list[int]
) -> list[dict[str, object]]:
    rows = []
    tensor, tensor_headers = v2_body()
    for max_batch in max_batches:
        proc, url = start_server(make_store(max_batch, tmp))
        try:
            label = f"batching on (max {max_batch})" if max_batch > 1 else "batching off (max 1)"
            for kind, path, body, headers in (
                ("/v1/classify JPEG", "/v1/classify?top_k=1", jpeg, {"Content-Type": "image/jpeg"}),
                ("v2 binary tensor", f"/v2/models/{MODEL}/infer", tensor, tensor_headers),
            ):
                stats = asyncio.run(drive(url, body, path, headers, concurrency, seconds))
                mean_batch = _mean_batch(url)
                rows.append(
                    {"variant": f"server {label}, {kind}", **stats, "mean_batch": mean_batch}
                )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return rows


def _mean_batch(url: str) -> float:
    import httpx

    s = httpx.get(f"{url}/v2/models/{MODEL}/stats").json()["model_stats"][0]
    return s["inference_count"] / max(1, s["execution_count"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--max-batch-sizes",
        default="32,8,1",
        help="server variants, comma-separated max_batch_size values",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    jpeg = photo_jpeg()
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [int(v) for v in args.max_batch_sizes.split(",")]
        rows = served(args.seconds, args.concurrency, jpeg, Path(tmp), sizes)
        rows += raw_ort(args.seconds, jpeg)
    best_raw = max(r["images_s"] for r in rows if str(r["variant"]).startswith("raw ORT"))
    print(
        f"\nMobileNetV2 224x224, {os.cpu_count()} CPUs, {args.concurrency} closed-loop clients, "
        f"{args.seconds:.0f} s per server run (cumulative mean batch size per server)\n"
    )
    nan = float("nan")
    print(
        f"{'variant':<50} {'img/s':>8} {'x raw':>6} {'p50 ms':>8} {'p99 ms':>8} {'batch':>6} "
        f"{'client CPU':>10}"
    )
    for r in rows:
        print(
            f"{r['variant']:<50} {r['images_s']:>8.1f} {r['images_s'] / best_raw:>6.2f} "
            f"{r.get('p50_ms', nan):>8.1f} {r.get('p99_ms', nan):>8.1f} "
            f"{r.get('mean_batch', nan):>6.1f} {r.get('client_cpu', nan):>10.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "best_raw_images_s": best_raw}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
