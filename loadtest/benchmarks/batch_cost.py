"""What a row costs ONNX Runtime on CPU at each batch size, for every batched model in the store.

    python -m loadtest.benchmarks.batch_cost [--seconds 1] [--threads 1] [--models a,b]

Each model's session is built as the server builds it (``--threads`` intra-op threads: the
thread budget gives each worker's sessions one thread on a 2-core machine) and fed zeros of its
input shapes (dynamic non-batch axes at 64) at batch 1, 2, 4, 8, 16 and 32 (up to its
``max_batch_size``). Prints ms per row at each size and the smallest size within 5 % of the
cheapest row: beyond it a CPU batch buys nothing but latency and arena memory, which is what
``batching.cpu_max_batch_size`` is for.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from loadtest.benchmarks import servers as srv
from loadtest.report import format_table

SIZES = (1, 2, 4, 8, 16, 32)


def row_cost_ms(model_dir: Path, threads: int, seconds: float) -> tuple[dict[int, float], str]:
    from serving.core.config import load_config
    from serving.core.runtime import OnnxModel, _zeros

    config = load_config(model_dir / "config.yaml")
    version = max(int(p.name) for p in model_dir.iterdir() if p.name.isdigit())
    model = OnnxModel(model_dir / str(version) / "model.onnx", config, default_threads=threads)
    costs = {}
    for size in (s for s in SIZES if s <= config.batching.max_batch_size):
        feeds = {spec.name: _zeros(spec.shape[1:], size, spec.datatype)
                 for spec in config.inputs}
        model.run(feeds)
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model.run(feeds)
            runs += 1
        costs[size] = (time.perf_counter() - start) * 1000 / (runs * size)
    return costs, str(config.batching.cpu_max_batch_size or "-")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=1.0, help="seconds per batch size")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads per session")
    p.add_argument("--models", help="comma list (default: every batched model in the store)")
    args = p.parse_args(argv)
    from serving.core.config import load_config

    names = args.models.split(",") if args.models else sorted(
        d.name for d in srv.STORE.iterdir()
        if (d / "config.yaml").is_file()
        and load_config(d / "config.yaml").batching.max_batch_size > 1)
    body = []
    for name in names:
        costs, cap = row_cost_ms(srv.STORE / name, args.threads, args.seconds)
        best = min(costs.values())
        enough = min(s for s, c in costs.items() if c <= best * 1.05)
        body.append([name] + [srv.fmt(costs.get(s), ".2f") for s in SIZES] + [str(enough), cap])
    headers = ["model"] + [f"b={s} ms/row" for s in SIZES] + ["within 5% from", "cpu cap set"]
    load = srv.machine_info()["load_avg_at_start"][0]
    print(f"\nONNX Runtime CPU, {args.threads} intra-op thread(s), zeros at each batch size, "
          f"{args.seconds:g} s per cell (load avg at start {load:.2f})")
    print(format_table(headers, body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
