"""GPU: Fovea served (JPEG uploads) beside raw ONNX Runtime CUDA, measured in one run.

    python -m loadtest.benchmarks.gpu [--seconds 8] [--concurrency 16,64,128]

Needs onnxruntime-gpu (``pip install .[gpu]``) and a CUDA device; without the CUDA provider
it says so and measures nothing. On a GPU the balance flips: the model is cheap per image at
large batches and decoding JPEGs on the CPU becomes the limit, so the table shows three
figures side by side:

* raw ORT CUDA, pre-decoded tensors, batch 1 / 8 / 32 (``OnnxModel`` with the server's CUDA
  provider options and IO binding): what the GPU can take;
* the CPU decode ceiling: ``cores`` threads of Fovea's decode + preprocess on the small JPEG;
* served: ``fovea serve --workers auto`` (MobileNetV2 only), closed loop, multipart JPEG.

Writes ``gpu.json`` under ``loadtest/results/<date>-<machine>/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from loadtest.benchmarks import servers as srv
from loadtest.report import format_table

MODEL = "mobilenet_v2"


def raw_cuda(seconds: float, jpeg: bytes) -> list[dict[str, Any]]:
    from serving.core.config import load_config
    from serving.core.runtime import OnnxModel
    from serving.imaging.preprocess import ImagePreprocessor

    config = load_config(srv.STORE / MODEL / "config.yaml")
    assert config.preprocess is not None
    model = OnnxModel(srv.STORE / MODEL / "1" / "model.onnx", config)
    if model.providers[0] != "CUDAExecutionProvider":
        raise RuntimeError(f"session runs on {model.providers[0]}, not CUDA")
    row = ImagePreprocessor(config.preprocess, max_pixels=10**9)(jpeg).tensor
    rows = []
    for batch in (1, 8, 32):
        x = np.stack([row] * batch)
        for _ in range(5):
            model.run({"pixels": x})
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            model.run({"pixels": x})
            n += batch
        rows.append({"variant": f"raw ORT CUDA, batch {batch}, io_binding={model.io_binding}",
                     "img_s": n / (time.perf_counter() - start)})
    return rows


def decode_ceiling(seconds: float, jpeg: bytes, threads: int) -> dict[str, Any]:
    from serving.core.config import load_config
    from serving.imaging.preprocess import ImagePreprocessor

    config = load_config(srv.STORE / MODEL / "config.yaml")
    assert config.preprocess is not None
    pre = ImagePreprocessor(config.preprocess, max_pixels=10**9)
    run = srv.loop_in_threads(lambda: pre(jpeg), threads, seconds)
    return {"variant": f"CPU decode + preprocess, {threads} threads", "img_s": run["per_s"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--concurrency", default="16,64,128")
    p.add_argument("--out", type=Path)
    p.add_argument("--machine")
    args = p.parse_args(argv)
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        print("no CUDAExecutionProvider in this onnxruntime build (install .[gpu] on a CUDA "
              "machine); nothing measured")
        return 2
    from serving.core.threads import usable_cores

    with tempfile.TemporaryDirectory() as tmp:
        photo = srv.photos(Path(tmp))["small"]
        jpeg = photo.read_bytes()
        rows = raw_cuda(args.seconds, jpeg)
        rows.append(decode_ceiling(args.seconds, jpeg, usable_cores()))
        port = srv.free_port()
        url = f"http://127.0.0.1:{port}"
        env = {"FOVEA_LOAD_MODELS": json.dumps([MODEL])}
        with srv.process(srv.fovea_cmd(port), url + "/readyz", env=env):
            served = srv.drive(url, args.concurrency, args.seconds, Path(tmp) / "served.json",
                               extra=["--workload", "classify", "--images", str(photo.parent)])
    for r in served:
        rows.append({"variant": f"served, c={r['concurrency']:g}", "img_s": r["img_s"],
                     "p99_ms": r["p99_ms"], "batch": r["batch"]})
    print(format_table(["variant", "img/s", "p99 ms", "server batch"],
                       [[r["variant"], srv.fmt(r["img_s"]), srv.fmt(r.get("p99_ms"), ".0f"),
                         srv.fmt(r.get("batch"), ".1f")] for r in rows]))
    folder = srv.results_dir(args.out, args.machine)
    (folder / "gpu.json").write_text(json.dumps(
        {"machine": srv.machine_info(), "device": ort.get_device(), "rows": rows}, indent=2))
    print(f"wrote {folder / 'gpu.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
