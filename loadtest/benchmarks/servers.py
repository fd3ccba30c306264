"""Shared pieces of the benchmarks: server child processes, peer venvs, photos, load driving.

Every server runs as a child process in its own process group on a free loopback port and is
stopped (SIGTERM, then SIGKILL) when its turn ends, even when the benchmark fails.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "model_store"
HERE = Path(__file__).resolve().parent
LARGE_SIZE = (4032, 2688)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def process(
    cmd: list[str], ready_url: str, *, env: dict[str, str] | None = None, timeout_s: float = 180
) -> Iterator[subprocess.Popen[bytes]]:
    """A server child process (own process group, so its workers stop with it)."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, **(env or {})})
        try:
            _wait_ready(proc, log, ready_url, timeout_s)
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)  # a paused server cannot act on SIGTERM
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], log: IO[bytes], url: str, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{proc.args!r} exited: {log.read()[-3000:].decode()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > end:
            raise TimeoutError(f"{url} not ready after {timeout_s} s")
        time.sleep(0.2)


def loop_in_threads(work: Callable[[], object], threads: int, seconds: float) -> dict[str, float]:
    """``threads`` threads each calling ``work`` back to back for ``seconds``, in this process:
    calls per second and this process's CPU ms per call."""
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def loop(i: int) -> None:
        while time.perf_counter() < stop:
            work()
            counts[i] += 1

    started, cpu = time.perf_counter(), time.process_time()
    pool = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    calls = sum(counts)
    return {"per_s": calls / (time.perf_counter() - started),
            "cpu_ms": (time.process_time() - cpu) * 1000 / calls if calls else float("nan")}


def idle_cores(pid: int, seconds: float = 2.0) -> float:
    """Cores a server (all its processes) burns while nobody calls it."""
    before = sum(cpu_by_thread(pid).values())
    time.sleep(seconds)
    return (sum(cpu_by_thread(pid).values()) - before) / seconds


@contextlib.contextmanager
def resumed(pid: int) -> Iterator[None]:
    """A server paused with SIGSTOP (its whole process group) runs while inside, and is paused
    again after: one that polls while idle then takes no CPU from the others' turns."""
    os.killpg(pid, signal.SIGCONT)
    try:
        yield
    finally:
        os.killpg(pid, signal.SIGSTOP)


def descendants(pid: int) -> list[int]:
    """A process and all its descendants (a server and its workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def group_rss_mb(pid: int) -> float:
    """Resident memory of a server and all its workers."""
    total = 0
    for p in descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def cpu_by_thread(pid: int) -> dict[str, float]:
    """CPU seconds so far of a server and its workers, by kind of thread: ``event loop`` (a
    process's main thread), ``decode``, ``inference`` (``run-*``), ``caption steps``, ``other``
    -- from the OS thread names Fovea sets (``serving.core.threads.name_os_thread``)."""
    out: dict[str, float] = {}
    for p in descendants(pid):
        with contextlib.suppress(OSError):
            live = 0.0
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    seconds = _cpu_seconds(task / "stat")
                    kind = _thread_kind(int(task.name) == p, (task / "comm").read_text().strip())
                    out[kind] = out.get(kind, 0.0) + seconds
                    live += seconds
            # threads that have exited (a peer's idle thread-pool workers) count in the
            # process's total only
            out["other"] = out.get("other", 0.0) + _cpu_seconds(Path(f"/proc/{p}/stat")) - live
    return out


def _cpu_seconds(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _thread_kind(main: bool, name: str) -> str:
    if main:
        return "event loop"
    for prefix, kind in (("decode", "decode"), ("run-", "inference"), ("steps-", "caption steps")):
        if name.startswith(prefix):
            return kind
    return "other"


def fovea_cmd(port: int, *, store: Path = STORE, workers: str = "auto") -> list[str]:
    return [sys.executable, "-m", "serving.cli", "serve", "--port", str(port),
            "--model-store", str(store), "--log-level", "warning", "--workers", workers]


def ensure_venv(cache: Path, name: str, requirements: list[str]) -> Path:
    """A virtual environment with ``requirements`` from the package registry, made once and
    reused while its requirement list is unchanged; returns its interpreter."""
    venv = cache / name
    python = venv / "bin" / "python"
    marker = venv / "fovea-requirements.txt"
    wanted = "\n".join(requirements)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"creating {venv}: pip install {' '.join(requirements)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
    marker.write_text(wanted)
    return python


def photos(folder: Path) -> dict[str, Path]:
    """Two one-photo folders: ``small`` (chelsea, 451x300, JPEG q90, ~35 KB) and ``large``
    (coffee upscaled to 4032x2688 with sensor-like noise, q90, ~1.6 MB: a phone photo)."""
    import skimage.data
    from PIL import Image

    out = {}
    small = Image.fromarray(skimage.data.chelsea())
    big = np.asarray(Image.fromarray(skimage.data.coffee()).resize(
        LARGE_SIZE, Image.Resampling.BICUBIC)).astype(np.int16)
    big += np.random.default_rng(0).normal(0, 3, big.shape).round().astype(np.int16)
    large = Image.fromarray(np.clip(big, 0, 255).astype(np.uint8))
    for name, img in (("small", small), ("large", large)):
        (folder / name).mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        path = folder / name / f"{name}.jpg"
        path.write_bytes(buf.getvalue())
        out[name] = path
    return out


def drive(url: str, concurrency: str, seconds: float, out: Path, *, warmup: float = 2.0,
          extra: list[str] | None = None, server_pid: int | None = None) -> list[dict[str, Any]]:
    """Closed loop at each concurrency level with ``fovea loadtest``; one row per level.

    With ``server_pid``, each level runs on its own (an unmeasured warm-up call, then the
    measured one) and its row gains ``server_cpu_ms_img``: the server's CPU time (all its
    processes) during the measured window per image answered -- what a request costs the
    server, which the shared machine's noise moves far less than throughput -- and the same
    split by kind of thread (:func:`cpu_by_thread`).
    """
    if server_pid is None:
        return _loadtest(url, concurrency, seconds, warmup, out, extra)
    rows = []
    for level in concurrency.split(","):
        if warmup > 0:
            _loadtest(url, level, warmup, 0, out, extra)
        rows.append(measure(url, level, seconds, out, server_pid, extra=extra))
    return rows


def measure(url: str, level: str, seconds: float, out: Path, server_pid: int, *,
            extra: list[str] | None = None) -> dict[str, Any]:
    """One measured closed-loop window at ``level``, with the server's CPU time per image
    (``server_cpu_ms_img``, and by kind of thread) during it; no warm-up."""
    before = cpu_by_thread(server_pid)
    row = _loadtest(url, level, seconds, 0, out, extra)[0]
    after = cpu_by_thread(server_pid)
    images = row["img_s"] * seconds
    split = {k: (v - before.get(k, 0.0)) * 1000 / images if images else None
             for k, v in after.items()}
    row["server_cpu_ms_img"] = sum(v or 0.0 for v in split.values()) if images else None
    row["server_cpu_ms_img_by_thread"] = split
    return row


def _loadtest(url: str, concurrency: str, seconds: float, warmup: float, out: Path,
              extra: list[str] | None) -> list[dict[str, Any]]:
    from loadtest.cli import main as loadtest

    argv = [url, "-c", concurrency, "--no-progress", "--warmup", str(warmup),
            "--window", str(seconds), "--min-windows", "1", "--max-windows", "1",
            "--json", str(out), *(extra or [])]
    if loadtest(argv) != 0:
        raise RuntimeError(f"load test failed: {' '.join(argv)}")
    rows = []
    for step in json.loads(out.read_text())["steps"]:
        t = step["total"]
        lat = t["latency_ms"] or {}
        rows.append({"concurrency": step["target"], "req_s": t["throughput"],
                     "img_s": t["images_per_s"], "p50_ms": lat.get("p50"),
                     "p99_ms": lat.get("p99"), "errors": t["error_rate"],
                     "batch": (t["server"] or {}).get("batch_size"),
                     "client_cpu": t["client_cpu"]})
    return rows


def results_dir(base: Path | None, machine: str | None) -> Path:
    day = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    name = machine or platform.node() or "machine"
    folder = base or ROOT / "loadtest" / "results" / f"{day}-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def machine_info() -> dict[str, Any]:
    from serving.core.threads import cgroup_cpu_limit, usable_cores

    return {"host": platform.node(), "cpu": platform.processor() or platform.machine(),
            "usable_cores": usable_cores(), "cgroup_cpu_limit": cgroup_cpu_limit(),
            "os_cpu_count": os.cpu_count(), "load_avg_at_start": os.getloadavg(),
            "python": sys.version.split()[0]}


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)
