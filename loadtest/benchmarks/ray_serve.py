"""Fovea on Ray Serve, measured side by side in one run on this machine.

1. The proxy's cost: throughput and p99 at concurrency 16 through Serve (one replica) vs the same
   Fovea process served directly by uvicorn, each pinned to core 0, same settings.
2. Scale-out: one vs two replicas at concurrency 16, each replica pinned to a core of its own.
   The three variants run back to back in rounds (the direct server stays up, the deployment is
   scaled 1 -> 2 -> 1), so the shared machine's background load hits each alike; medians.
3. Failures under a bounded load (concurrency 4): a replica SIGKILLed, then a whole worker node
   removed (its raylet and workers killed, like a lost machine): requests failed and the time
   until the deployment is back to two RUNNING replicas.

    PYTHONPATH=. python -m loadtest.benchmarks.ray_serve [--seconds 10] [--rounds 3]

Everything runs on loopback: a two-node local Ray cluster (Ray's ports 9250-9289), Serve's proxy
on 9290, the direct server on 9291. Writes ray_serve.json and ray_serve.md under
``<out>/<date>-<host>/``. The load generator, Serve's proxy and controller share the same two
cores as the replicas, so absolute numbers are this machine's; read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.payloads import multipart, sample_photos
from loadtest.transport import Client, PreparedRequest

ROOT = Path(__file__).resolve().parents[2]
RAY_BASE_PORT, SERVE_PORT, DIRECT_PORT = 9250, 9290, 9291
SETTINGS = {"load_models": ["mobilenet_v2"], "intra_op_threads": 1, "decode_threads": 1}


def classify_request() -> PreparedRequest:
    body, content_type = multipart(sample_photos(("chelsea",)), field="images")
    return PreparedRequest("/v1/classify", body, {"Content-Type": content_type})


async def closed_loop(
    url: str, request: PreparedRequest, concurrency: int, seconds: float, warmup_s: float = 3
) -> dict[str, Any]:
    """``concurrency`` clients back to back for ``warmup_s + seconds``; stats over ``seconds``."""
    done: list[tuple[float, float, int]] = []  # (start, latency, status)
    async with Client(url, connections=concurrency, timeout_s=60) as client:
        begin = time.monotonic()
        end = begin + warmup_s + seconds

        async def worker() -> None:
            while (start := time.monotonic()) < end:
                status = await client.send(request)
                done.append((start, time.monotonic() - start, status))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    measured = [d for d in done if d[0] >= begin + warmup_s]
    ok = np.array([lat for _, lat, s in measured if s == 200])
    return {
        "concurrency": concurrency,
        "requests": len(measured),
        "errors": sum(1 for *_, s in measured if s != 200),
        "throughput_rps": round(len(ok) / seconds, 2),
        "p50_ms": round(float(np.percentile(ok, 50)) * 1000, 1) if len(ok) else None,
        "p99_ms": round(float(np.percentile(ok, 99)) * 1000, 1) if len(ok) else None,
    }


class DirectServer:
    """``fovea serve`` in its own process pinned to core 0, same settings as a replica."""

    url = f"http://127.0.0.1:{DIRECT_PORT}"

    def __enter__(self) -> DirectServer:
        env = os.environ | {
            "PYTHONPATH": str(ROOT),
            "FOVEA_LOAD_MODELS": json.dumps(SETTINGS["load_models"]),
            "FOVEA_INTRA_OP_THREADS": "1",
            "FOVEA_DECODE_THREADS": "1",
            "FOVEA_LOG_LEVEL": "warning",
        }
        cmd = [
            sys.executable,
            "-m",
            "serving.cli",
            "serve",
            "--port",
            str(DIRECT_PORT),
            "--model-store",
            str(ROOT / "model_store"),
        ]
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
        os.sched_setaffinity(self.proc.pid, {0})
        wait_http_ready(self.url + "/readyz", 120)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def wait_http_ready(url: str, timeout_s: float) -> None:
    import httpx

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout_s} s")


class RayBench:
    """The cluster, the Serve app and the replica bookkeeping for the Ray phases."""

    def __init__(self, tmp: Path) -> None:
        from serving.deploy import local_cluster

        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
        )
        self.tmp = tmp
        # Head: 2 logical CPUs (room for a replacement replica); worker node: 1.
        self.cluster = local_cluster.start([2, 1], RAY_BASE_PORT)
        local_cluster.connect(self.cluster)
        self.url = f"http://127.0.0.1:{SERVE_PORT}"

    def deploy(self, replicas: int) -> None:
        from serving.deploy import ray_deploy

        cfg = ray_deploy.load_config(ROOT / "serving/deploy/ray.yaml")
        cfg["http_options"] = {"host": "127.0.0.1", "port": SERVE_PORT}
        app = cfg["applications"][0]
        app["args"]["settings"] |= SETTINGS | {
            "model_store": str(ROOT / "model_store"),
            "face_gallery_dir": str(self.tmp / "gallery"),
            "collections_dir": str(self.tmp / "collections"),
        }
        fovea = app["deployments"][0]
        fovea.pop("autoscaling_config", None)
        fovea["num_replicas"] = replicas
        ray_deploy.deploy(ray_deploy.resolve(cfg, ROOT), timeout_s=300)
        self.wait_replicas(replicas, 300)

    def replicas(self) -> dict[str, tuple[int, str]]:
        """Live replicas: id -> (pid, node id)."""
        from ray._private import state

        return {
            a["Name"].rsplit("#", 1)[1]: (a["Pid"], a["Address"]["NodeID"])
            for a in state.actors().values()
            if a["State"] == "ALIVE" and a["Name"].startswith("SERVE_REPLICA::fovea#Fovea#")
        }

    def running(self) -> int:
        from ray import serve

        app = serve.status().applications.get("fovea")
        return app.deployments["Fovea"].replica_states.get("RUNNING", 0) if app else 0

    def wait_replicas(self, n: int, timeout_s: float, gone: str | None = None) -> float:
        start = time.monotonic()
        while not (self.running() == n and len(live := self.replicas()) == n and gone not in live):
            if time.monotonic() - start > timeout_s:
                raise TimeoutError(f"not {n} replicas after {timeout_s} s")
            time.sleep(0.2)
        return time.monotonic() - start

    def pin(self) -> None:
        """Replica i runs on core i only."""
        for core, (pid, _) in enumerate(sorted(self.replicas().values())):
            os.sched_setaffinity(pid, {core % os.cpu_count()})

    def close(self) -> None:
        import ray
        from ray import serve

        serve.shutdown()
        ray.shutdown()
        self.cluster.shutdown()


async def under_failure(bench: RayBench, fail: Any, gone: str, timeout_s: float) -> dict[str, Any]:
    """Concurrency-4 load; ``fail()`` after 3 s; until two replicas RUNNING again (+3 s)."""
    request = classify_request()
    statuses: list[tuple[float, int]] = []
    stop = asyncio.Event()
    async with Client(bench.url, connections=4, timeout_s=60) as client:

        async def worker() -> None:
            while not stop.is_set():
                start = time.monotonic()
                statuses.append((start, await client.send(request)))

        workers = [asyncio.create_task(worker()) for _ in range(4)]
        await asyncio.sleep(3)
        failed_at = time.monotonic()
        fail()
        recovery = await asyncio.to_thread(bench.wait_replicas, 2, timeout_s, gone)
        await asyncio.sleep(3)
        stop.set()
        await asyncio.gather(*workers)
    after = [s for t, s in statuses if t >= failed_at]
    return {
        "requests_after_failure": len(after),
        "failed": sum(1 for s in after if s != 200),
        "failed_statuses": sorted({s for s in after if s != 200}),
        "recovery_s": round(recovery, 1),
    }


def run_throughput(bench: RayBench, seconds: float, rounds: int) -> dict[str, Any]:
    """Rounds of direct, Serve with 1 replica, Serve with 2 replicas, back to back, so that the
    machine's background load hits every variant alike; medians over rounds."""
    runs: dict[str, list[dict[str, Any]]] = {"direct": [], "serve_1": [], "serve_2": []}
    with DirectServer() as direct:
        for _ in range(rounds):
            bench.deploy(1)
            bench.pin()
            runs["direct"].append(
                asyncio.run(closed_loop(direct.url, classify_request(), 16, seconds))
            )
            runs["serve_1"].append(
                asyncio.run(closed_loop(bench.url, classify_request(), 16, seconds))
            )
            bench.deploy(2)
            bench.pin()
            runs["serve_2"].append(
                asyncio.run(closed_loop(bench.url, classify_request(), 16, seconds))
            )
    return {name: {"rounds": r, "median": median_run(r)} for name, r in runs.items()}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("throughput_rps", "p50_ms", "p99_ms")
    out: dict[str, Any] = {k: round(float(np.median([r[k] for r in runs])), 2) for k in keys}
    out["errors"] = sum(r["errors"] for r in runs)
    return out


def run_failures(bench: RayBench) -> dict[str, Any]:
    out: dict[str, Any] = {}
    bench.deploy(2)
    for pid, _ in bench.replicas().values():  # unpinned: a replacement may land anywhere
        os.sched_setaffinity(pid, set(range(os.cpu_count() or 1)))
    victim, (pid, _) = sorted(bench.replicas().items())[0]
    out["sigkill_replica"] = asyncio.run(
        under_failure(bench, lambda: os.kill(pid, signal.SIGKILL), victim, 180)
    )
    worker_node = next(iter(bench.cluster.worker_nodes))
    on_worker = [r for r, (_, node) in bench.replicas().items() if node == worker_node.node_id]
    if not on_worker:
        out["remove_worker_node"] = {"skipped": "no replica was placed on the worker node"}
        return out
    out["remove_worker_node"] = asyncio.run(
        under_failure(
            bench,
            lambda: bench.cluster.remove_node(worker_node, allow_graceful=False),
            on_worker[0],
            180,
        )
    ) | {"replicas_lost": len(on_worker)}
    return out


def table(results: dict[str, Any]) -> str:
    thr = results["throughput"]
    direct, one, two = (thr[k]["median"] for k in ("direct", "serve_1", "serve_2"))
    rounds = len(thr["direct"]["rounds"])
    rows = [
        f"| c=16, chelsea JPEG, mobilenet_v2 (median of {rounds} rounds) | req/s | p50 ms "
        "| p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for name, r in (
        ("Fovea direct (uvicorn, core 0)", direct),
        ("Ray Serve, 1 replica (core 0)", one),
        ("Ray Serve, 2 replicas (cores 0, 1)", two),
    ):
        rows.append(
            f"| {name} | {r['throughput_rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} |"
        )
    ratios = results["ratios"]
    rows += [
        "",
        f"- Serve/direct throughput: {ratios['serve_vs_direct_throughput']}, "
        f"p99: {ratios['serve_vs_direct_p99']}",
        f"- 2 replicas / 1 replica throughput: {ratios['two_vs_one_replica_throughput']}",
        f"- per round, Serve/direct: {ratios['per_round_serve_vs_direct_throughput']}; "
        f"2/1 replicas: {ratios['per_round_two_vs_one_throughput']}",
        "",
        "| failure (c=4) | requests after it | failed | recovery to 2 RUNNING (s) |",
        "|---|---|---|---|",
    ]
    for name in ("sigkill_replica", "remove_worker_node"):
        f = results[name]
        if "skipped" in f:
            rows.append(f"| {name} | skipped: {f['skipped']} | | |")
        else:
            rows.append(
                f"| {name} | {f['requests_after_failure']} | {f['failed']} "
                f"{f['failed_statuses'] or ''} | {f['recovery_s']} |"
            )
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three variants")
    parser.add_argument("--out", type=Path, default=ROOT / "loadtest/results")
    args = parser.parse_args(argv)
    import tempfile

    results: dict[str, Any] = {
        "machine": {"host": platform.node(), "cpus": os.cpu_count()},
        "settings": SETTINGS,
    }
    with tempfile.TemporaryDirectory() as tmp:
        bench = RayBench(Path(tmp))
        try:
            results["throughput"] = run_throughput(bench, args.seconds, args.rounds)
            results |= run_failures(bench)
        finally:
            bench.close()
    thr = results["throughput"]
    direct, one, two = (thr[k]["median"] for k in ("direct", "serve_1", "serve_2"))
    results["ratios"] = {
        "serve_vs_direct_throughput": round(one["throughput_rps"] / direct["throughput_rps"], 3),
        "serve_vs_direct_p99": round(one["p99_ms"] / direct["p99_ms"], 3),
        "two_vs_one_replica_throughput": round(two["throughput_rps"] / one["throughput_rps"], 3),
        "per_round_serve_vs_direct_throughput": [
            round(o["throughput_rps"] / d["throughput_rps"], 3)
            for d, o in zip(thr["direct"]["rounds"], thr["serve_1"]["rounds"], strict=True)
        ],
        "per_round_two_vs_one_throughput": [
            round(t["throughput_rps"] / o["throughput_rps"], 3)
            for o, t in zip(thr["serve_1"]["rounds"], thr["serve_2"]["rounds"], strict=True)
        ],
    }
    folder = args.out / f"{dt.date.today().isoformat()}-{platform.node()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ray_serve.json").write_text(json.dumps(results, indent=2) + "\n")
    text = table(results)
    (folder / "ray_serve.md").write_text(text)
    print(text)
    print(f"written to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
