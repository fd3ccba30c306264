"""Fovea beside the servers a user would otherwise run, on CPU, measured in one run.

    python -m loadtest.benchmarks.peers --seconds 8

Same ONNX file (model_store/mobilenet_v2), same request (``POST /v1/classify``, one image as
base64 JSON, or ``--encoding multipart``), closed loop at ``--concurrency`` (1,4,16,64), for two
photos: a small JPEG (scikit-image's chelsea, 451x300, 35 KB) and a phone photo (4032x2688,
1.6 MB). Servers, each a child process on a free loopback port, all up for the whole run and
stopped at its end:

* ``fovea``: ``fovea serve --workers auto`` (one full-app worker per usable core, thread
  budget, dynamic batching as configured);
* ``fovea-nobatch``: the same with ``max_batch_size: 1`` (batching on must never be slower);
* ``fovea-1w``: one worker (the process-model A/B; not in the default set);
* ``naive``: FastAPI + ``uvicorn --workers 2``, ORT 1 thread each, no batching, full decode
  (``naive_peer.py``);
* ``litserve``: LitServe, 2 inference workers, batch 16 / 5 ms, ORT 1 thread each
  (``litserve_peer.py``).

The peers run from their own virtual environments, created under ``--cache`` from the package
registry on first use and reused while their requirement list is unchanged.

In-process ceilings are measured in the same run: ``cores`` threads, each looping Fovea's own
decode + preprocess + ``session.run`` (ORT 1 thread) on one image -- the work with nothing
around it (for the phone photo, the reduced-decode-bound ceiling).

A server that burns CPU while idle (LitServe's inference workers poll: ~0.37 of a core, against
under 0.01 for the others) would take it from whoever is measured, the ceiling included, so a
server above ``IDLE_PAUSE_CORES`` is paused (SIGSTOP, its whole process group) outside its own
turns.

This machine's speed drifts by tens of percent within minutes, so each cell is measured in
``--rounds`` turns: in every round the ceiling and then each server (in rotating order) get an
equal slice of ``--seconds``. A cell's img/s is the mean over its rounds, its p99 the median
round's; ``peers.json`` keeps each round's img/s and Fovea's ratio to the best peer in each.

Prints one table per photo (img/s, p99, the server's CPU ms per image answered -- all its
processes, during the measured window --, Fovea over the best peer and over the ceiling) and
writes ``peers.json`` under ``loadtest/results/<date>-<machine>/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from loadtest.benchmarks import servers as srv
from loadtest.report import format_table

MODEL = "mobilenet_v2"
ONNX = srv.STORE / MODEL / "1" / "model.onnx"
LABELS = srv.STORE / MODEL / "labels.txt"
PEER_REQUIREMENTS = {
    "naive": ["fastapi", "uvicorn[standard]", "python-multipart", "onnxruntime", "pillow",
              "numpy"],
    "litserve": ["litserve", "onnxruntime", "pillow", "numpy"],
}
PEERS = ("naive", "litserve")
IDLE_PAUSE_CORES = 0.05


class Ceiling:
    """``threads`` threads x (decode + preprocess + ORT 1 thread) on one photo, in this
    process: the work with nothing around it."""

    def __init__(self, photo: bytes, threads: int) -> None:
        from serving.core.config import load_config
        from serving.core.runtime import OnnxModel
        from serving.imaging.preprocess import ImagePreprocessor

        config = load_config(srv.STORE / MODEL / "config.yaml")
        assert config.preprocess is not None
        self.model = OnnxModel(ONNX, config, default_threads=1)
        self.pre = ImagePreprocessor(config.preprocess, max_pixels=10**9)
        self.name = config.preprocess.input
        self.photo, self.threads = photo, threads
        self.once()

    def once(self) -> None:
        self.model.run({self.name: self.pre(self.photo).tensor[None]})

    def measure(self, seconds: float) -> dict[str, Any]:
        run = srv.loop_in_threads(self.once, self.threads, seconds)
        return {"threads": self.threads, "img_s": run["per_s"], "cpu_ms_img": run["cpu_ms"]}


def classify_request(photo: Path, encoding: str = "json") -> list[str]:
    """``fovea loadtest`` arguments for the benchmarks' request: one image per ``POST
    /v1/classify``, as base64 JSON (every peer's contract) or as a multipart file part."""
    return ["--workload", "classify", "--encoding", encoding, "--images", str(photo.parent),
            "--timeout", "60"]


def unbatched_store(tmp: Path) -> Path:
    store = tmp / "store"
    if (store / MODEL).exists():
        return store
    shutil.copytree(srv.STORE / MODEL, store / MODEL)
    path = store / MODEL / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["batching"]["max_batch_size"] = 1
    config["batching"].pop("preferred_batch_sizes", None)
    config["runtime"]["warmup_batch_sizes"] = [1]
    path.write_text(yaml.safe_dump(config))
    return store


def server(
    name: str, port: int, args: argparse.Namespace, tmp: Path
) -> tuple[list[str], str, dict[str, str]]:
    """(command, readiness URL, extra environment) of one server."""
    base = f"http://127.0.0.1:{port}"
    only_model = {"FOVEA_LOAD_MODELS": json.dumps([MODEL])}
    if name == "fovea":
        return srv.fovea_cmd(port), base + "/readyz", only_model
    if name == "fovea-nobatch":
        return srv.fovea_cmd(port, store=unbatched_store(tmp)), base + "/readyz", only_model
    if name == "fovea-1w":
        return srv.fovea_cmd(port, workers="1"), base + "/readyz", only_model
    python = srv.ensure_venv(args.cache, f"{name}-peer", PEER_REQUIREMENTS[name])
    if name == "naive":
        cmd = [str(python), "-m", "uvicorn", "--app-dir", str(srv.HERE), "naive_peer:app",
               "--workers", "2", "--port", str(port), "--log-level", "warning",
               "--no-access-log"]
        return cmd, base + "/health", {"NAIVE_MODEL": str(ONNX), "NAIVE_LABELS": str(LABELS),
                                       "NAIVE_THREADS": "1"}
    if name == "litserve":
        cmd = [str(python), str(srv.HERE / "litserve_peer.py"), "--port", str(port),
               "--model", str(ONNX), "--labels", str(LABELS), "--workers", "2",
               "--max-batch-size", "16", "--batch-timeout", "0.005", "--threads", "1"]
        return cmd, base + "/health", {}
    raise ValueError(f"unknown server {name!r}")


def start(
    names: list[str], args: argparse.Namespace, tmp: Path, stack: contextlib.ExitStack
) -> dict[str, tuple[str, int]]:
    """Every server in ``names`` up at once, stopped when ``stack`` closes: name -> (url, pid)."""
    running = {}
    for name in names:
        port = srv.free_port()
        cmd, ready, env = server(name, port, args, tmp)
        print(f"== starting {name}", flush=True)
        proc = stack.enter_context(srv.process(cmd, ready, env=env))
        running[name] = (f"http://127.0.0.1:{port}", proc.pid)
    return running


def venv_versions(args: argparse.Namespace, names: list[str]) -> dict[str, str]:
    out = {}
    for name in names:
        python = args.cache / f"{name}-peer" / "bin" / "python"
        if python.exists():
            freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True,
                                    text=True).stdout.split()
            out[name] = " ".join(sorted(freeze))
    return out


def combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell from its rounds (equal lengths): throughput and CPU per image over all of
    them, latency percentiles as the median round's, and each round's img/s for the spread."""
    img_s = statistics.fmean(r["img_s"] for r in rounds)
    batches = [r["batch"] for r in rounds if r["batch"] is not None]  # peers report none
    cpu = [r["server_cpu_ms_img"] * r["img_s"] for r in rounds if r["server_cpu_ms_img"]]
    kinds = {k for r in rounds for k in r["server_cpu_ms_img_by_thread"]}
    return {
        "concurrency": rounds[0]["concurrency"],
        "img_s": img_s,
        "req_s": statistics.fmean(r["req_s"] for r in rounds),
        "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
        "p99_ms": statistics.median(r["p99_ms"] for r in rounds),
        "errors": max(r["errors"] for r in rounds),
        "batch": statistics.fmean(batches) if batches else None,
        "server_cpu_ms_img": sum(cpu) / (img_s * len(rounds)) if cpu and img_s else None,
        "server_cpu_ms_img_by_thread": {
            k: sum((r["server_cpu_ms_img_by_thread"].get(k) or 0) * r["img_s"] for r in rounds)
            / (img_s * len(rounds)) for k in kinds} if img_s else {},
        "rounds_img_s": [r["img_s"] for r in rounds],
    }


def table(photo: str, cells: dict[str, list[dict]], ceil: dict[str, float],
          names: list[str]) -> str:
    peers = [n for n in names if n in PEERS]
    headers = ["c"] + [f"{n} img/s" for n in names] + [f"{n} p99" for n in names]
    headers += [f"{n} cpu ms/img" for n in names]
    headers += ["fovea/best peer", "fovea/ceiling", "fovea/nobatch"]
    body = []
    levels = [r["concurrency"] for r in cells[names[0]]]
    for i, c in enumerate(levels):
        row = {n: cells[n][i] for n in names}
        fovea = row.get("fovea", {}).get("img_s")
        best = max((row[n]["img_s"] for n in peers), default=None)
        nob = row.get("fovea-nobatch", {}).get("img_s")
        body.append([f"{c:g}"] + [srv.fmt(row[n]["img_s"]) for n in names]
                    + [srv.fmt(row[n]["p99_ms"], ".0f") for n in names]
                    + [srv.fmt(row[n].get("server_cpu_ms_img")) for n in names]
                    + [srv.fmt(fovea / best if fovea and best else None, ".2f"),
                       srv.fmt(fovea / ceil["img_s"] if fovea else None, ".2f"),
                       srv.fmt(fovea / nob if fovea and nob else None, ".2f")])
    return (f"\n{photo} photo; in-process ceiling {ceil['img_s']:.1f} img/s, "
            f"{ceil['cpu_ms_img']:.1f} CPU ms/img\n" + format_table(headers, body))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8.0, help="measured seconds per cell")
    p.add_argument("--rounds", type=int, default=4,
                   help="each cell's seconds are split into this many rounds, the servers and "
                   "the ceiling taking turns in each (slow drift of a shared machine then "
                   "hits them alike)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per cell")
    p.add_argument("--concurrency", default="1,4,16,64")
    p.add_argument("--servers", default="fovea,fovea-nobatch,naive,litserve",
                   help="comma list of fovea, fovea-nobatch, fovea-1w, naive, litserve")
    p.add_argument("--photos", default="small,large")
    p.add_argument("--encoding", choices=("json", "multipart"), default="json",
                   help="request body; LitServe's peer takes JSON only")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "fovea-bench",
                   help="where the peers' virtual environments live")
    p.add_argument("--out", type=Path, help="results folder (default loadtest/results/...)")
    p.add_argument("--machine", help="machine name in the results folder (default hostname)")
    args = p.parse_args(argv)
    from serving.core.threads import usable_cores

    names = args.servers.split(",")
    started = time.monotonic()
    info = srv.machine_info()
    report: dict[str, Any] = {"machine": info, "model": MODEL, "seconds": args.seconds,
                              "rounds": args.rounds, "concurrency": args.concurrency,
                              "encoding": args.encoding,
                              "photos": {}}
    texts = []
    with tempfile.TemporaryDirectory() as tmp_dir, contextlib.ExitStack() as stack:
        tmp = Path(tmp_dir)
        photo_files = srv.photos(tmp / "photos")
        running = start(names, args, tmp, stack)
        idle = {name: srv.idle_cores(pid) for name, (_, pid) in running.items()}
        report["idle_cores"] = idle
        paused = {name for name, cores in idle.items() if cores > IDLE_PAUSE_CORES}
        for name in paused:
            print(f"== pausing {name} outside its turns: {idle[name]:.2f} cores when idle")
            os.killpg(running[name][1], signal.SIGSTOP)

        def turn(name: str) -> contextlib.AbstractContextManager[None]:
            return srv.resumed(running[name][1]) if name in paused else contextlib.nullcontext()
        for photo in args.photos.split(","):
            path = photo_files[photo]
            ceiling = Ceiling(path.read_bytes(), usable_cores())
            cells: dict[str, list[dict]] = {name: [] for name in names}
            ceilings = []
            for level in args.concurrency.split(","):
                print(f"== {photo}, c={level}", flush=True)
                for name, (url, _) in running.items():
                    with turn(name):
                        srv.drive(url, level, args.warmup, tmp / "warmup.json",
                                  extra=classify_request(path, args.encoding))
                rounds = []
                for r in range(args.rounds):
                    ceilings.append(ceiling.measure(args.seconds / args.rounds))
                    order = names[r % len(names):] + names[:r % len(names)]
                    cell = {}
                    for name in order:
                        with turn(name):
                            cell[name] = srv.measure(
                                running[name][0], level, args.seconds / args.rounds,
                                tmp / f"{photo}-{name}.json", running[name][1],
                                extra=classify_request(path, args.encoding))
                    rounds.append(cell)
                for name in names:
                    cells[name].append(combine([rnd[name] for rnd in rounds]))
                if "fovea" in cells and any(n in PEERS for n in names):
                    cells["fovea"][-1]["rounds_vs_best_peer"] = [
                        rnd["fovea"]["img_s"] / max(rnd[n]["img_s"] for n in names if n in PEERS)
                        for rnd in rounds]
            ceil = {"threads": ceiling.threads,
                    "img_s": statistics.median(c["img_s"] for c in ceilings),
                    "cpu_ms_img": statistics.median(c["cpu_ms_img"] for c in ceilings)}
            texts.append(table(photo, cells, ceil, names))
            report["photos"][photo] = {"bytes": path.stat().st_size, "ceiling": ceil,
                                       "servers": cells}
    report["peer_versions"] = venv_versions(args, [n for n in names if n in PEERS])
    report["elapsed_s"] = time.monotonic() - started
    print(f"\nMobileNetV2, {info['usable_cores']} usable cores (load avg at start "
          f"{info['load_avg_at_start'][0]:.2f}), {args.seconds:g} s per cell, one image per "
          f"request ({args.encoding}), {args.rounds} interleaved rounds per cell, total "
          f"{report['elapsed_s']:.0f} s")
    for text in texts:
        print(text)
    folder = srv.results_dir(args.out, args.machine)
    (folder / "peers.json").write_text(json.dumps(report, indent=2))
    (folder / "peers.txt").write_text("\n".join(texts) + "\n")
    print(f"wrote {folder / 'peers.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
