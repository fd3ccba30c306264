"""Calm under overload: open loop at 3x capacity, bounded, on loopback; stops by itself.

    python -m loadtest.benchmarks.overload [--factor 3] [--seconds 20]

Starts ``fovea serve --workers auto`` (MobileNetV2 only), measures its capacity (closed loop,
``--capacity-concurrency`` clients), then sends ``--factor`` x that rate as an open loop
(constant arrivals, one small JPEG per request as a raw ``image/jpeg`` body) for ``--seconds``.
Every request's status and latency is recorded. Prints the time to a 503 (p50/p99), the accepted
requests' latency (p50/p99) beside what the admission bounds imply (workers x ``max_in_flight``
rows / capacity, or ``max_wait_ms`` if shorter), and the server's resident memory (all its
processes) before, right after, and after ``--idle`` seconds idle; also the rate actually served
during the overload (rejections and the load generator share the cores) and the bound at that
rate. ``--rate`` fixes the offered rate for A/B runs; ``--set batching.max_batch_size=8`` runs a
temporary copy of the store with that config change. Writes ``overload.json`` under
``loadtest/results/<date>-<machine>/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from loadtest.benchmarks import servers as srv

MODEL = "mobilenet_v2"
MAX_OUTSTANDING = 5000  # safety cap of the generator; reported if reached


async def closed_loop(url: str, body: bytes, concurrency: int, seconds: float) -> float:
    """Requests/s answered 200 by ``concurrency`` back-to-back clients."""
    done = 0
    stop = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            async with session.post(url, data=body, headers={"content-type": "image/jpeg"}) as r:
                await r.read()
                done += r.status == 200

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def open_loop(url: str, body: bytes, rate: float, seconds: float) -> dict[str, Any]:
    records: list[tuple[int, float]] = []  # (status, seconds); status 0 = transport error
    skipped = 0
    outstanding: set[asyncio.Task[None]] = set()

    async def one(session: aiohttp.ClientSession) -> None:
        t = time.perf_counter()
        try:
            async with session.post(url, data=body,
                                    headers={"content-type": "image/jpeg"}) as r:
                await r.read()
                records.append((r.status, time.perf_counter() - t))
        except (aiohttp.ClientError, TimeoutError):
            records.append((0, time.perf_counter() - t))

    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=timeout) as session:
        start = time.perf_counter()
        n = 0
        while (due := start + n / rate) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            n += 1
            if len(outstanding) >= MAX_OUTSTANDING:
                skipped += 1
                continue
            task = asyncio.create_task(one(session))
            outstanding.add(task)
            task.add_done_callback(outstanding.discard)
        sent_for = time.perf_counter() - start
        await asyncio.gather(*outstanding)
        drained_after = time.perf_counter() - start - sent_for
    return {"records": records, "skipped": skipped, "sent_for_s": sent_for,
            "drained_after_s": drained_after}


def summary(records: list[tuple[int, float]], status: int) -> dict[str, Any]:
    lat = np.asarray([s for code, s in records if code == status]) * 1000
    if lat.size == 0:
        return {"count": 0}
    return {"count": int(lat.size), "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max())}


def overridden_store(tmp: Path, overrides: list[str]) -> Path:
    """A copy of the model's folder with ``section.key=value`` (YAML values) applied."""
    import yaml

    store = tmp / "store"
    shutil.copytree(srv.STORE / MODEL, store / MODEL)
    path = store / MODEL / "config.yaml"
    config = yaml.safe_load(path.read_text())
    for item in overrides:
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        config.setdefault(section, {})[name] = yaml.safe_load(value)
    path.write_text(yaml.safe_dump(config))
    return store


def bound_ms(rows: int, rate: float, max_wait_ms: float | None) -> float:
    """The queueing the admission bounds imply: ``rows`` in flight at ``rate``, or the
    configured wait if that is shorter."""
    by_rows = 1000 * rows / rate
    return by_rows if max_wait_ms is None else min(by_rows, max_wait_ms)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--factor", type=float, default=3.0, help="offered load / capacity")
    p.add_argument("--rate", type=float,
                   help="offered req/s instead of factor x capacity (fixed, for A/B runs)")
    p.add_argument("--seconds", type=float, default=20.0, help="open-loop duration")
    p.add_argument("--capacity-seconds", type=float, default=6.0)
    p.add_argument("--capacity-concurrency", type=int, default=16)
    p.add_argument("--idle", type=float, default=10.0, help="idle seconds before the last RSS")
    p.add_argument("--workers", default="auto")
    p.add_argument("--photo", choices=["small", "large"], default="small",
                   help="small: 451x300 JPEG ~35 KB; large: 4032x2688 ~1.6 MB (a phone photo)")
    p.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE",
                   help="override the model's config in a temporary copy of the store, e.g. "
                        "batching.max_batch_size=8 runtime.cpu_mem_arena=false")
    p.add_argument("--port", type=int, help="server port (default: a free one)")
    p.add_argument("--out", type=Path)
    p.add_argument("--machine")
    args = p.parse_args(argv)
    import yaml

    tmp = Path(tempfile.mkdtemp(prefix="fovea-overload-"))
    body = srv.photos(tmp)[args.photo].read_bytes()
    store = overridden_store(tmp, args.set) if args.set else srv.STORE
    limits = yaml.safe_load((store / MODEL / "config.yaml").read_text())["batching"]
    limit = limits.get("max_in_flight") or limits["max_queue_size"]
    max_wait_ms = limits.get("max_wait_ms")
    port = args.port or srv.free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"FOVEA_LOAD_MODELS": json.dumps([MODEL])}
    cmd = srv.fovea_cmd(port, store=store, workers=args.workers)
    with srv.process(cmd, url + "/readyz", env=env) as proc:
        endpoint = url + "/v1/classify"
        asyncio.run(closed_loop(endpoint, body, 4, 2.0))  # warm-up
        rss_before = srv.group_rss_mb(proc.pid)
        capacity = asyncio.run(closed_loop(endpoint, body, args.capacity_concurrency,
                                           args.capacity_seconds))
        rate = args.rate or capacity * args.factor
        print(f"capacity {capacity:.1f} req/s; offering {rate:.1f} req/s for {args.seconds:g} s",
              flush=True)
        run = asyncio.run(open_loop(endpoint, body, rate, args.seconds))
        rss_after = srv.group_rss_mb(proc.pid)
        time.sleep(args.idle)
        rss_idle = srv.group_rss_mb(proc.pid)
    shutil.rmtree(tmp, ignore_errors=True)
    from serving.core.threads import usable_cores

    n_workers = int(args.workers) if args.workers != "auto" else usable_cores()
    records = run["records"]
    codes: dict[str, int] = {}
    for code, _ in records:
        codes[str(code)] = codes.get(str(code), 0) + 1
    result = {
        "machine": srv.machine_info(), "model": MODEL, "workers": n_workers,
        "photo": args.photo, "config_overrides": args.set,
        "capacity_req_s": capacity, "offered_req_s": rate, "seconds": args.seconds,
        "statuses": codes, "skipped_by_generator": run["skipped"],
        "rejected_503": summary(records, 503), "accepted_200": summary(records, 200),
        "implied_bound_ms": bound_ms(n_workers * limit, capacity, max_wait_ms),
        "max_in_flight": limit, "max_wait_ms": max_wait_ms,
        "drained_after_s": run["drained_after_s"],
        "rss_mb": {"before": rss_before, "after": rss_after, "after_idle": rss_idle},
    }
    served = codes.get("200", 0) / (run["sent_for_s"] + run["drained_after_s"])
    result["served_under_overload_req_s"] = served
    result["implied_bound_at_served_ms"] = (
        bound_ms(n_workers * limit, served, max_wait_ms) if served else None)
    rej, acc = result["rejected_503"], result["accepted_200"]
    print(f"statuses {codes}; generator skipped {run['skipped']}")
    print(f"time to 503:      p50 {srv.fmt(rej.get('p50_ms'))} ms, "
          f"p99 {srv.fmt(rej.get('p99_ms'))} ms ({rej['count']} rejected)")
    print(f"accepted latency: p50 {srv.fmt(acc.get('p50_ms'))} ms, "
          f"p99 {srv.fmt(acc.get('p99_ms'))} ms ({acc['count']} accepted); the bound implies "
          f"<= {result['implied_bound_ms']:.0f} ms of queueing ({n_workers} workers x "
          f"{limit} rows / {capacity:.0f} req/s"
          + ("" if max_wait_ms is None else f", or max_wait_ms {max_wait_ms:g}") + ")")
    print(f"served under overload {served:.1f} req/s ({served / capacity:.0%} of capacity); "
          f"at that rate the bound implies "
          f"<= {srv.fmt(result['implied_bound_at_served_ms'], '.0f')} ms")
    rss = result["rss_mb"]
    print(f"RSS: before {rss['before']:.0f} MB, after {rss['after']:.0f} MB "
          f"({rss['after'] / rss['before'] - 1:+.1%}), after {args.idle:g} s idle "
          f"{rss['after_idle']:.0f} MB")
    folder = srv.results_dir(args.out, args.machine)
    (folder / "overload.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {folder / 'overload.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
