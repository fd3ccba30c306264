"""What the CAM/embedding outputs cost a classify call: ONNX Runtime fetching only ``logits``
vs ``logits`` + ``features`` + ``feature_map``, side by side in one run.

    python -m loadtest.benchmarks.feature_outputs [--seconds 3] [--threads 1] [--json out.json]

The feature map is an intermediate the graph computes anyway; fetching it only adds the copy
out of the session (1280 x 7 x 7 floats, 245 KiB per image). Rounds alternate between the
variants so a neighbour's load on the shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "model_store" / "mobilenet_v2" / "1" / "model.onnx"
VARIANTS = {
    "logits": ["logits"],
    "logits+features": ["logits", "features"],
    "all (with feature_map)": ["logits", "features", "feature_map"],
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="per variant and batch size")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
    rows = []
    for batch in args.batches:
        pixels = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for outputs in VARIANTS.values():
            session.run(outputs, {"pixels": pixels})  # warm-up
        deadline = time.perf_counter() + args.seconds * len(VARIANTS)
        while time.perf_counter() < deadline:
            for name, outputs in VARIANTS.items():
                started = time.perf_counter()
                session.run(outputs, {"pixels": pixels})
                times[name].append(time.perf_counter() - started)
        base = float(np.median(times["logits"]))
        for name, samples in times.items():
            median = float(np.median(samples))
            rows.append(
                {
                    "batch": batch,
                    "outputs": name,
                    "runs": len(samples),
                    "median_ms_per_image": 1000 * median / batch,
                    "vs_logits_only": median / base,
                }
            )
    print(f"{'batch':>5}  {'outputs':<24}{'runs':>6}{'ms/image':>10}{'vs logits':>11}")
    for r in rows:
        print(
            f"{r['batch']:>5}  {r['outputs']:<24}{r['runs']:>6}"
            f"{r['median_ms_per_image']:>10.2f}{r['vs_logits_only']:>11.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
