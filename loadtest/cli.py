"""``fovea loadtest URL ...`` (or ``python -m loadtest``): parse options, run, report.

Bad options, an unreachable server or an unknown model end with one line on stderr and status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

import orjson

from loadtest import calibrate
from loadtest.errors import LoadTestError
from loadtest.options import (
    PROG,
    build_parser,
    make_workload,
    measure_settings,
    parse_targets,
    validate,
)
from loadtest.progress import Progress
from loadtest.report import document, render, write_csv
from loadtest.runner import LoadSettings, Runner, Step
from loadtest.search import Budget, SearchResult, search
from loadtest.server_metrics import ServerMetrics
from loadtest.transport import Client, PreparedRequest, error_message
from loadtest.workloads import WORKLOADS

SEARCH_LIMIT = {"concurrency": 1024.0, "rate": 100_000.0}  # upper bounds when none is given


async def preflight(client: Client, request: PreparedRequest) -> str | None:
    """One request off the clock: fail early on a wrong URL, model or option; learn the model.

    Only client errors stop the run: overload (429, 5xx) is what a load test is there to see.
    """
    status, body = await client.fetch(request)
    if 400 <= status < 500 and status != 429:
        path = request.path.split("?")[0]
        raise LoadTestError(f"{request.method} {path} answered {status}: {error_message(body)}")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    model = doc.get("model") or doc.get("model_name") if isinstance(doc, dict) else None
    return model if isinstance(model, str) else None


async def run(args: argparse.Namespace) -> tuple[list[Step], SearchResult | None, dict[str, Any]]:
    closed = args.rate is None
    mode = "concurrency" if closed else "rate"
    targets = parse_targets(args.concurrency or "1" if closed else args.rate, integer=closed)
    workload = make_workload(args)
    searching = args.latency_budget is not None
    if searching and len(targets) == 1:  # one value: the search's lower bound, no upper one
        targets.append(SEARCH_LIMIT[mode])
    connections = int(max(targets)) if closed else args.max_inflight
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            Client(args.url, connections=connections, timeout_s=args.timeout)
        )
        requests = await workload.prepare(client)
        answered_by = await preflight(client, requests[0])
        workload.model = workload.model or answered_by
        metrics = None
        if args.server_metrics != "none":
            scraper = await stack.enter_async_context(Client(args.url, connections=1, timeout_s=10))
            metrics = ServerMetrics(scraper, workload.model, args.server_metrics)
        progress = args.progress if args.progress is not None else sys.stderr.isatty()
        runner = Runner(
            client, requests,
            LoadSettings(mode, args.arrivals, args.max_inflight, args.seed),
            measure_settings(args),
            metrics,
            Progress(mode) if progress else None,
        )
        result = None
        if searching:
            budget = Budget(args.latency_budget, args.percentile, args.max_error_rate)
            result = await search(runner.step, budget, lo=targets[0], hi=targets[-1],
                                  integer=closed, max_probes=args.max_probes)
            steps = sorted(result.probes, key=lambda s: s.target)
        else:
            steps = [await runner.step(t) for t in targets]
    meta = {
        "url": args.url, "workload": args.workload, "model": workload.model, "mode": mode,
        "batch": args.batch, "encoding": args.encoding if args.workload != "v2" else
        args.tensor_format, "arrivals": args.arrivals if not closed else None,
        "images": [p.name for p in workload.options.photos],
        "measurement": vars(measure_settings(args)),
        "server_metrics": metrics.source if metrics else "none",
    }
    return steps, result, meta


def _write(args: argparse.Namespace, steps: list[Step], result: SearchResult | None,
           meta: dict[str, Any]) -> None:
    if args.json:
        args.json.write_bytes(orjson.dumps(document(meta, steps, result),
                                           option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    if args.csv:
        write_csv(steps, args.csv)
    if args.chart:
        from loadtest import chart

        title = f"{meta['workload']} {meta['model'] or ''} @ {meta['url']} (batch {args.batch})"
        chart.save({meta["model"] or meta["workload"]: steps}, args.chart, title=title,
                   budget_ms=args.latency_budget)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        if args.list_workloads:
            for name, cls in sorted(WORKLOADS.items()):
                print(f"{name:13s} {cls.summary}")
            return 0
        validate(args)
        if args.calibrate:
            closed = args.rate is None
            target = parse_targets(args.concurrency or "8" if closed else args.rate, closed)[0]
            load = LoadSettings("concurrency" if closed else "rate", args.arrivals,
                                args.max_inflight, args.seed)
            step = asyncio.run(calibrate.calibrate(load, target, measure_settings(args)))
            print(calibrate.describe(step))
            return 0
        steps, result, meta = asyncio.run(run(args))
    except LoadTestError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    print(render(steps, result))
    try:
        _write(args, steps, result, meta)
    except OSError as exc:
        print(f"{PROG}: error: cannot write output: {exc}", file=sys.stderr)
        return 2
    return 0
