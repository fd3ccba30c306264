"""Where a served image's CPU goes, by kind of thread, beside the in-process ceiling's.

    python -m loadtest.benchmarks.cpu_split [--seconds 8] [--concurrency 1,4,16]

Starts ``fovea serve --workers auto`` (MobileNetV2 only) and drives ``/v1/classify`` (base64
JSON, as the peer benchmark does) at each level. Around each measured window it reads every
server thread's CPU time from ``/proc`` and groups it by the OS thread names the server sets:
the event loop (HTTP, JSON, routing, admission, responses, thread hand-offs), decode
(decode + preprocess), inference (ONNX Runtime runners) and other. Prints CPU ms per image
answered for each, beside the ceiling's (``cores`` threads of decode + preprocess + ORT in one
process, nothing around them): what the server adds to the work itself is the difference.

``--servers fovea,naive`` measures the naive peer of ``loadtest.benchmarks.peers`` the same way,
in turns with Fovea at each level (its venv is made under ``--cache`` as the peers benchmark
makes it). Its main threads are its event loops; everything else (decode, preprocess and ORT
on FastAPI's thread pool) counts as "other": the comparison is of the event loop's share.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

from loadtest.benchmarks import servers as srv
from loadtest.benchmarks.peers import Ceiling, classify_request, start
from loadtest.report import format_table

KINDS = ("event loop", "decode", "inference", "other")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8.0, help="measured seconds per level")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--concurrency", default="1,4,16")
    p.add_argument("--photos", default="small,large")
    p.add_argument("--servers", default="fovea", help="fovea and/or naive, measured in turns")
    p.add_argument("--rounds", type=int, default=1, help="turns of each server per level")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "fovea-bench",
                   help="where the naive peer's venv lives (as in the peers benchmark)")
    p.add_argument("--out", type=Path, help="results folder (default loadtest/results/...)")
    p.add_argument("--machine")
    args = p.parse_args(argv)
    from serving.core.threads import usable_cores

    report: dict = {"machine": srv.machine_info(), "photos": {}}
    body = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        files = srv.photos(tmp / "photos")
        for photo in args.photos.split(","):
            path = files[photo]
            ceil = Ceiling(path.read_bytes(), usable_cores()).measure(args.seconds)
            rows = _turns(args, path, tmp)
            report["photos"][photo] = {"ceiling": ceil, "rows": rows}
            for r in rows:
                split = r["server_cpu_ms_img_by_thread"]
                body.append([photo, r["server"], f"{r['concurrency']:g}", srv.fmt(r["img_s"])]
                            + [srv.fmt(split.get(k, 0.0), ".2f") for k in KINDS]
                            + [srv.fmt(r["server_cpu_ms_img"], ".2f"),
                               srv.fmt(ceil["cpu_ms_img"], ".2f"),
                               srv.fmt(r["server_cpu_ms_img"] - ceil["cpu_ms_img"], ".2f")])
    headers = ["photo", "server", "c", "img/s", *(f"{k} ms/img" for k in KINDS),
               "server ms/img", "ceiling ms/img", "added ms/img"]
    print(f"\nMobileNetV2, {args.servers} (fovea serve --workers auto; naive: 2 uvicorn "
          f"workers), {report['machine']['usable_cores']} usable "
          f"cores (load avg at start {report['machine']['load_avg_at_start'][0]:.2f}); CPU ms "
          "per image answered, by kind of server thread")
    print(format_table(headers, body))
    folder = srv.results_dir(args.out, args.machine)
    (folder / "cpu_split.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {folder / 'cpu_split.json'}")
    return 0


def _turns(args: argparse.Namespace, path: Path, tmp: Path) -> list[dict]:
    """Every server up at once; at each level each is warmed, then takes ``--rounds`` measured
    turns, in turn."""
    extra = classify_request(path)
    rows: list[dict] = []
    with contextlib.ExitStack() as stack:
        running = start(args.servers.split(","), args, tmp, stack)
        for level in args.concurrency.split(","):
            for url, _ in running.values():  # unmeasured: sessions, arenas, connections
                srv.drive(url, level, args.warmup, tmp / "warm.json", warmup=0, extra=extra)
            for turn in range(args.rounds):
                for name, (url, pid) in running.items():
                    row = srv.measure(url, level, args.seconds, tmp / f"{name}.json", pid,
                                      extra=extra)
                    rows.append({"server": name, "turn": turn, **row})
    return rows


if __name__ == "__main__":
    sys.exit(main())
