"""Results as a terminal table, a JSON document and CSV rows (per window, plus a total per step)."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtest.runner import Step
from loadtest.search import SearchResult
from loadtest.stats import Window

UNITS = {"concurrency": "concurrency", "rate": "rate (req/s)"}


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _errors(w: Window) -> str:
    if not w.requests:
        return "-"
    if w.ok == w.requests:
        return "0"
    detail = " ".join(f"{k}:{v}" for k, v in w.errors.items())
    return f"{w.error_rate:.1%} ({detail})"


def table_rows(steps: Sequence[Step]) -> tuple[list[str], list[list[str]]]:
    mode = steps[0].mode if steps else "concurrency"
    headers = [UNITS[mode]]
    if mode == "rate":
        headers.append("sent/s")
    headers += ["req/s", "img/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms", "errors",
                "srv batch", "srv queue ms", "srv infer ms", "gen cpu"]
    rows = []
    for s in steps:
        t = s.total
        lat = t.latency_ms
        row = [f"{s.target:g}" + ("" if s.stable else "*")]
        if mode == "rate":
            row.append(_num(t.offered_rate))
        row += [_num(t.throughput), _num(t.images_per_s)]
        row += [_num(lat.at(p) if lat else None) for p in (50, 90, 95, 99)]
        row += [_num(lat.max if lat else None), _errors(t)]
        srv = t.server
        row += [
            _num(srv.batch_size if srv else None, 2),
            _num(srv.queue_ms if srv else None, 2),
            _num(srv.infer_ms if srv else None, 2),
            f"{t.client_cpu:.0%}",
        ]
        rows.append(row)
    return headers, rows


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def render(steps: Sequence[Step], search: SearchResult | None = None) -> str:
    """The table, a note on unstable steps, warnings, and the search's answer if any."""
    out = [format_table(*table_rows(steps))]
    if any(not s.stable for s in steps):
        out.append("* throughput not shown to be stable within the tolerance (see the warnings)")
    for s in steps:
        out += [f"warning ({s.mode}={s.target:g}): {w}" for w in s.warnings]
    if search is not None:
        b = search.budget
        if search.best is None:
            out.append(f"no load met p{b.percentile:g} <= {b.latency_ms:g} ms")
        else:
            best = search.best
            assert best.total.latency_ms is not None
            out.append(
                f"best under p{b.percentile:g} <= {b.latency_ms:g} ms: {best.mode}={best.target:g}"
                f" -> {best.total.throughput:.1f} req/s ({best.total.images_per_s:.1f} img/s), "
                f"p{b.percentile:g} {best.total.latency_ms.at(b.percentile):.1f} ms"
            )
    return "\n".join(out)


def window_dict(w: Window) -> dict[str, Any]:
    doc = dataclasses.asdict(w)
    for name in ("throughput", "images_per_s", "offered_rate", "error_rate", "client_cpu",
                 "client_us_per_request"):
        doc[name] = getattr(w, name)
    return doc


def step_dict(s: Step) -> dict[str, Any]:
    return {
        "mode": s.mode,
        "target": s.target,
        "stable": s.stable,
        "capped": s.capped,
        "warnings": s.warnings,
        "total": window_dict(s.total),
        "windows": [window_dict(w) for w in s.windows],
    }


def document(meta: dict[str, Any], steps: Sequence[Step], search: SearchResult | None) -> dict:
    doc: dict[str, Any] = {**meta, "steps": [step_dict(s) for s in steps]}
    if search is not None:
        doc["search"] = {
            "budget": dataclasses.asdict(search.budget),
            "verdicts": [
                {"target": s.target, "failed": v} for s, v in zip(search.probes, search.verdicts,
                                                                  strict=True)
            ],
            "best": None if search.best is None else search.best.target,
        }
    return doc


CSV_FIELDS = [
    "mode", "target", "window", "start_s", "duration_s", "requests", "ok", "sent", "errors",
    "throughput", "images_per_s", "offered_rate", "error_rate", "p50_ms", "p90_ms", "p95_ms",
    "p99_ms", "max_ms", "mean_ms", "server_batch_size", "server_queue_ms", "server_infer_ms",
    "client_cpu",
]


def csv_row(s: Step, label: str, w: Window) -> dict[str, Any]:
    lat, srv = w.latency_ms, w.server
    return {
        "mode": s.mode, "target": s.target, "window": label,
        "start_s": round(w.start_s, 3), "duration_s": round(w.duration_s, 3),
        "requests": w.requests, "ok": w.ok, "sent": w.sent,
        "errors": ";".join(f"{k}={v}" for k, v in w.errors.items()),
        "throughput": round(w.throughput, 3), "images_per_s": round(w.images_per_s, 3),
        "offered_rate": round(w.offered_rate, 3), "error_rate": round(w.error_rate, 5),
        **{f"p{p}_ms": (round(lat.at(p), 3) if lat else "") for p in (50, 90, 95, 99)},
        "max_ms": round(lat.max, 3) if lat else "", "mean_ms": round(lat.mean, 3) if lat else "",
        "server_batch_size": _round(srv.batch_size if srv else None),
        "server_queue_ms": _round(srv.queue_ms if srv else None),
        "server_infer_ms": _round(srv.infer_ms if srv else None),
        "client_cpu": round(w.client_cpu, 3),
    }


def _round(value: float | None) -> float | str:
    return "" if value is None else round(value, 3)


def write_csv(steps: Sequence[Step], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for s in steps:
            for i, w in enumerate(s.windows, 1):
                writer.writerow(csv_row(s, str(i), w))
            writer.writerow(csv_row(s, "total", s.total))
