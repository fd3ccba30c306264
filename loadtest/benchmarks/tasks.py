"""Every task endpoint served over HTTP beside the same app driven in-process, in one run.

    python -m loadtest.benchmarks.tasks [--seconds 8] [--concurrency 4]

For detect, segment, caption, vqa and faces verify (the ``fovea loadtest`` workloads, sample
photos, multipart uploads):

* served: ``fovea serve --workers auto`` over the shipped model store, closed loop at
  ``--concurrency`` from ``fovea loadtest`` over loopback;
* in-process: the same app object in this process (one worker, the thread budget of all
  usable cores), the same prepared requests sent through ASGI with no socket, no HTTP parsing
  and no load-generator process, at the same concurrency.

The ratio served / in-process is what the server around the task costs (or, above 1, what the
worker processes gain). Also drives ``/v1/caption`` at c=1 and c=8 (captions/s ratio: what
step-level batching and the workers give together), with the server's CPU per caption at each
level by kind of thread (event loop, decode, inference = the image encoder, caption steps).
Prints the table; writes ``tasks.json`` under ``loadtest/results/<date>-<machine>/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from loadtest import payloads
from loadtest.benchmarks import servers as srv
from loadtest.report import format_table
from loadtest.transport import PreparedRequest
from loadtest.workloads import WORKLOADS, WorkloadOptions

TASKS = ("detect", "segment", "caption", "vqa", "faces-verify")


async def prepared(task: str) -> list[PreparedRequest]:
    cls = WORKLOADS[task]
    options = WorkloadOptions(photos=payloads.sample_photos(cls.sample_photos))
    return await cls(options).prepare(None)  # type: ignore[arg-type]  # task bodies need no server


async def in_process(tasks: list[str], concurrency: int, seconds: float,
                     warmup: float) -> dict[str, dict[str, Any]]:
    from serving.app import create_app
    from serving.settings import Settings

    app = create_app(Settings(model_store=srv.STORE, log_level="warning"))
    out = {}
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(app.state.loaded.wait(), 300)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://in-process",
                                     timeout=60) as client:
            for task in tasks:
                out[task] = await _closed_loop(client, await prepared(task), concurrency,
                                               seconds, warmup)
                print(f"in-process {task}: {out[task]['req_s']:.1f} req/s", flush=True)
    return out


async def _closed_loop(client: httpx.AsyncClient, requests: list[PreparedRequest],
                       concurrency: int, seconds: float, warmup: float) -> dict[str, Any]:
    start = time.perf_counter()
    measure_from, stop = start + warmup, start + warmup + seconds
    latencies: list[float] = []
    errors = 0

    async def worker(i: int) -> None:
        nonlocal errors
        n = i
        while (now := time.perf_counter()) < stop:
            req = requests[n % len(requests)]
            n += concurrency
            r = await client.request(req.method, req.path, content=req.body, headers=req.headers)
            if now >= measure_from:
                latencies.append(time.perf_counter() - now)
                errors += r.status_code != 200

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    lat = np.asarray(latencies) * 1000
    return {"req_s": len(latencies) / seconds, "errors": errors / max(1, len(latencies)),
            "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
            "p99_ms": float(np.percentile(lat, 99)) if lat.size else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--out", type=Path)
    p.add_argument("--machine")
    args = p.parse_args(argv)
    tasks = args.tasks.split(",")
    served: dict[str, dict[str, Any]] = {}
    port = srv.free_port()
    url = f"http://127.0.0.1:{port}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        srv.process(srv.fovea_cmd(port), url + "/readyz") as proc,
    ):
        for task in tasks:
            print(f"== served {task}", flush=True)
            served[task] = srv.drive(url, str(args.concurrency), args.seconds,
                                     Path(tmp) / f"{task}.json", warmup=args.warmup,
                                     extra=["--workload", task, "--timeout", "60"])[0]
        print("== served caption at c=1 and c=8 (step-level batching)", flush=True)
        one, eight = srv.drive(url, "1,8", args.seconds, Path(tmp) / "caption-scaling.json",
                               warmup=args.warmup, extra=["--workload", "caption"],
                               server_pid=proc.pid)
    local = asyncio.run(in_process(tasks, args.concurrency, args.seconds, args.warmup))
    rows = []
    for task in tasks:
        s, i = served[task], local[task]
        rows.append([task, srv.fmt(s["req_s"]), srv.fmt(i["req_s"]),
                     srv.fmt(s["req_s"] / i["req_s"] if i["req_s"] else None, ".2f"),
                     srv.fmt(s["p99_ms"], ".0f"), srv.fmt(i["p99_ms"], ".0f"),
                     f"{s['errors']:.1%} / {i['errors']:.1%}"])
    info = srv.machine_info()
    print(f"\nc={args.concurrency}, {args.seconds:g} s per cell, {info['usable_cores']} usable "
          f"cores (load avg at start {info['load_avg_at_start'][0]:.2f})")
    text = format_table(["task", "served req/s", "in-process req/s", "served/in-process",
                         "served p99 ms", "in-process p99 ms", "errors"], rows)
    scaling = eight["req_s"] / one["req_s"] if one["req_s"] else None
    text += (f"\ncaptions/s served: c=1 {one['req_s']:.1f}, c=8 {eight['req_s']:.1f}, "
             f"c=8 / c=1 = {srv.fmt(scaling, '.2f')}")
    # What a caption costs the server at each level: if batching shared the work, c=8 would
    # cost less per caption; the ratio cannot exceed (cores busy at c=8) / (at c=1) otherwise.
    for name, row in (("c=1", one), ("c=8", eight)):
        split = ", ".join(f"{k} {v:.1f}" for k, v in sorted(
            row["server_cpu_ms_img_by_thread"].items()) if v and abs(v) >= 0.05)
        text += (f"\nserver CPU per caption at {name}: "
                 f"{srv.fmt(row['server_cpu_ms_img'])} ms ({split})")
    print(text)
    folder = srv.results_dir(args.out, args.machine)
    (folder / "tasks.json").write_text(json.dumps(
        {"machine": info, "concurrency": args.concurrency, "seconds": args.seconds,
         "served": served, "in_process": local,
         "caption_scaling": {"c1": one, "c8": eight, "ratio": scaling}}, indent=2))
    (folder / "tasks.txt").write_text(text + "\n")
    print(f"wrote {folder / 'tasks.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
