"""The options of ``fovea loadtest``: the parser, their checks, and what they build.

Every mistake becomes a :class:`LoadTestError` (one line, exit status 2), argparse's included.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from loadtest import payloads
from loadtest.errors import LoadTestError
from loadtest.measure import MeasureSettings
from loadtest.server_metrics import SOURCES
from loadtest.workloads import WORKLOADS, Workload, WorkloadOptions

PROG = "fovea loadtest"
DESCRIPTION = (
    "Load-test a running server: closed loop (-c), open loop (-r), sweeps over either, or a\n"
    "search for the most load under a latency budget. Every run stops by itself."
)
EXAMPLES = """examples:
  fovea loadtest http://127.0.0.1:8000 -c 1:16                  closed-loop sweep 1,2,4,8,16
  fovea loadtest http://127.0.0.1:8000 -r 20:100:20 --arrivals poisson   open-loop rate sweep
  fovea loadtest http://127.0.0.1:8000 -c 1:64 --latency-budget 100     best concurrency, p99<=100ms
  fovea loadtest http://127.0.0.1:8000 --workload v2 --model mobilenet_v2 --batch 4 -c 4
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise LoadTestError(message)


def parse_targets(spec: str, integer: bool) -> list[float]:
    """``8`` | ``1,2,4`` | ``1:16`` (doubling) | ``10:50:10`` (start:stop:step)."""
    try:
        if "," in spec:
            values = [float(v) for v in spec.split(",")]
        elif ":" in spec:
            parts = [float(v) for v in spec.split(":")]
            if len(parts) not in (2, 3) or parts[0] <= 0 or parts[1] < parts[0]:
                raise ValueError
            values, v = [], parts[0]
            while v <= parts[1] * (1 + 1e-9):
                values.append(v)
                v = v * 2 if len(parts) == 2 else v + parts[2]
                if len(parts) == 3 and parts[2] <= 0:
                    raise ValueError
        else:
            values = [float(spec)]
    except ValueError:
        raise LoadTestError(
            f"bad range {spec!r}: use 8, 1,2,4, 1:16 (doubling) or 10:50:10 (start:stop:step)"
        ) from None
    if any(v <= 0 for v in values) or (integer and any(v != int(v) for v in values)):
        raise LoadTestError(f"bad range {spec!r}: values must be positive" +
                            (" integers" if integer else ""))
    return values


def _key_values(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LoadTestError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _option_value(text: str) -> Any:
    """``5`` -> 5, ``0.5`` -> 0.5, ``true`` -> True, anything else stays text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=DESCRIPTION, epilog=EXAMPLES,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", nargs="?", help="server base URL, e.g. http://127.0.0.1:8000")
    what = p.add_argument_group("what to send")
    what.add_argument("--workload", default="classify", choices=sorted(WORKLOADS))
    what.add_argument("--model", help="model name (task default if unset; required for v2)")
    what.add_argument("--version", type=int, help="model version")
    what.add_argument("--batch", type=int, default=1, help="images (rows) per request")
    what.add_argument("--images", type=Path, help="folder of images to send (default: "
                      "scikit-image's photos " + ", ".join(payloads.SAMPLE_PHOTOS) + ")")
    what.add_argument("--encoding", choices=("multipart", "json"), default="multipart",
                      help="task endpoints: multipart uploads or base64 JSON")
    what.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                      help="task option, e.g. top_k=3 (repeatable)")
    what.add_argument("--format", dest="tensor_format", choices=("binary", "json"),
                      default="binary", help="v2 tensors: binary extension or JSON")
    what.add_argument("--shape", action="append", default=[], metavar="INPUT=D1,D2,...",
                      help="v2: full shape for an input with dynamic axes (repeatable)")
    load = p.add_argument_group("load")
    mode = load.add_mutually_exclusive_group()
    mode.add_argument("-c", "--concurrency", help="closed loop: in-flight requests "
                      "(8 | 1,2,4 | 1:16 | 2:12:2); default 1")
    mode.add_argument("-r", "--rate", help="open loop: requests/s, same range syntax")
    load.add_argument("--arrivals", choices=("constant", "poisson"), default="constant")
    load.add_argument("--max-inflight", type=int, default=1024,
                      help="open loop: outstanding requests beyond which sends are dropped")
    load.add_argument("--timeout", type=float, default=30.0, help="per-request timeout (s)")
    load.add_argument("--seed", type=int, default=0)
    budget = p.add_argument_group("latency-budget search (uses the range as bounds)")
    budget.add_argument("--latency-budget", type=float, metavar="MS",
                        help="find the highest load whose latency percentile stays under MS")
    budget.add_argument("--percentile", type=float, default=99, choices=(50, 90, 95, 99))
    budget.add_argument("--max-error-rate", type=float, default=0.01)
    budget.add_argument("--max-probes", type=int, default=8)
    m = p.add_argument_group("measurement")
    m.add_argument("--warmup", type=float, default=2.0, help="seconds excluded per step")
    m.add_argument("--window", type=float, default=4.0, help="seconds per measurement window")
    m.add_argument("--min-windows", type=int,
                   help="windows that must agree to call throughput stable (default 3)")
    m.add_argument("--max-windows", type=int, default=8)
    m.add_argument("--stability", type=float, default=0.1,
                   help="throughput tolerance across the last --min-windows windows")
    m.add_argument("--max-requests", type=int, help="measured requests per step (cap)")
    m.add_argument("--server-metrics", choices=SOURCES, default="auto")
    out = p.add_argument_group("output")
    out.add_argument("--json", type=Path, help="write all figures as JSON")
    out.add_argument("--csv", type=Path, help="write per-window and total rows as CSV")
    out.add_argument("--chart", type=Path, help="write a PNG chart")
    out.add_argument("--progress", action=argparse.BooleanOptionalAction,
                     help="per-window lines on stderr (default: when stderr is a terminal)")
    p.add_argument("--list-workloads", action="store_true", help="list workloads and exit")
    p.add_argument("--calibrate", action="store_true",
                   help="measure this load generator's own capacity against a no-op endpoint "
                   "at -c or -r (no URL needed)")
    return p


def validate(args: argparse.Namespace) -> None:
    if args.min_windows is None:
        args.min_windows = min(3, args.max_windows)
    positive = {"--batch": args.batch, "--window": args.window, "--timeout": args.timeout,
                "--min-windows": args.min_windows, "--max-windows": args.max_windows,
                "--max-inflight": args.max_inflight, "--max-probes": args.max_probes}
    for flag, value in positive.items():
        if value <= 0:
            raise LoadTestError(f"{flag} must be positive")
    if args.warmup < 0 or args.stability < 0:
        raise LoadTestError("--warmup and --stability must not be negative")
    if args.max_requests is not None and args.max_requests <= 0:
        raise LoadTestError("--max-requests must be positive")
    if args.min_windows > args.max_windows:
        raise LoadTestError("--min-windows exceeds --max-windows")
    if args.latency_budget is not None and args.latency_budget <= 0:
        raise LoadTestError("--latency-budget must be positive")
    for path in (args.json, args.csv, args.chart):
        if path is not None and not path.parent.is_dir():
            raise LoadTestError(f"cannot write {path}: {path.parent} is not a folder")
    if args.chart is not None and importlib.util.find_spec("matplotlib") is None:
        raise LoadTestError("--chart needs matplotlib: pip install 'fovea[loadtest]'")
    if args.url is None and not args.calibrate:
        raise LoadTestError("the server URL is required (e.g. http://127.0.0.1:8000)")
    if args.url is not None:
        _check_url(args.url)


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError when out of range)
    except ValueError as exc:
        raise LoadTestError(f"URL {url!r} is not valid: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadTestError(f"URL {url!r} must look like http://HOST[:PORT]")


def measure_settings(args: argparse.Namespace) -> MeasureSettings:
    return MeasureSettings(
        warmup_s=args.warmup,
        window_s=args.window,
        min_windows=args.min_windows,
        max_windows=args.max_windows,
        stability=args.stability,
        max_requests=args.max_requests,
        drain_s=min(args.timeout, 10.0),
    )


def make_workload(args: argparse.Namespace) -> Workload:
    try:
        cls = WORKLOADS[args.workload]
        photos = (payloads.folder_photos(args.images) if args.images
                  else payloads.sample_photos(cls.sample_photos))
    except ValueError as exc:
        raise LoadTestError(str(exc)) from None
    shapes = {}
    for name, dims in _key_values(args.shape, "--shape").items():
        try:
            shapes[name] = [int(d) for d in dims.split(",")]
        except ValueError:
            raise LoadTestError(f"--shape {name}={dims}: dimensions must be integers") from None
    params = {k: _option_value(v) for k, v in _key_values(args.param, "--param").items()}
    options = WorkloadOptions(
        photos=photos, model=args.model, version=args.version, batch=args.batch,
        encoding=args.encoding, params=params, tensor_format=args.tensor_format, shapes=shapes,
        seed=args.seed,
    )
    return cls(options)
