"""The server's own view of a window: queue wait, inference time and batch size, as deltas.

Read from ``/metrics`` (Prometheus text: the ``fovea_*`` histograms) or from
``/v2/models/{m}/stats`` (Triton's statistics JSON), so any Triton-compatible server reports too.
Servers with neither (most peers) simply get no server columns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from prometheus_client.parser import text_string_to_metric_families

from loadtest.errors import Unreachable
from loadtest.transport import Client

log = logging.getLogger(__name__)
SOURCES = ("auto", "prometheus", "triton", "none")


@dataclass(frozen=True)
class Sample:
    """Cumulative counters at one instant."""

    queue_s: float = 0.0
    queued_rows: int = 0
    infer_s: float = 0.0
    batches: int = 0
    rows: int = 0  # rows run (sum of batch sizes)
    queue_depth: float | None = None


@dataclass
class ServerFigures:
    source: str
    batches: int
    batch_size: float | None  # mean rows per inference call
    queue_ms: float | None  # mean wait of a row in the batch queue
    infer_ms: float | None  # mean inference time per batch
    queue_depth: float | None  # rows queued at the end of the window


def delta(before: Sample, after: Sample, source: str) -> ServerFigures:
    batches = after.batches - before.batches
    rows = after.rows - before.rows
    queued = after.queued_rows - before.queued_rows
    return ServerFigures(
        source=source,
        batches=batches,
        batch_size=rows / batches if batches else None,
        queue_ms=1000 * (after.queue_s - before.queue_s) / queued if queued else None,
        infer_ms=1000 * (after.infer_s - before.infer_s) / batches if batches else None,
        queue_depth=after.queue_depth,
    )


def parse_prometheus(text: str, model: str | None) -> Sample | None:
    """Sum the ``fovea_*`` series of ``model`` (all models when None) over its versions."""
    totals: dict[str, float] = {}
    found = False
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("fovea_"):
            continue
        for s in family.samples:
            if model is not None and s.labels.get("model") != model:
                continue
            if "version" not in s.labels:
                continue
            found = True
            totals[s.name] = totals.get(s.name, 0.0) + s.value
    if not found:
        return None
    return Sample(
        queue_s=totals.get("fovea_queue_duration_seconds_sum", 0.0),
        queued_rows=int(totals.get("fovea_queue_duration_seconds_count", 0)),
        infer_s=totals.get("fovea_inference_duration_seconds_sum", 0.0),
        batches=int(totals.get("fovea_batch_size_count", 0)),
        rows=int(totals.get("fovea_batch_size_sum", 0)),
        queue_depth=totals.get("fovea_queue_depth"),
    )


def parse_triton(doc: Any) -> Sample | None:
    stats = doc.get("model_stats") if isinstance(doc, dict) else None
    if not stats:
        return None
    queue_ns = queued = infer_ns = batches = rows = 0
    for version in stats:
        inference = version.get("inference_stats", {})
        queue_ns += inference.get("queue", {}).get("ns", 0)
        queued += inference.get("queue", {}).get("count", 0)
        rows += version.get("inference_count", 0)
        batches += version.get("execution_count", 0)
        infer_ns += sum(b["compute_infer"]["ns"] for b in version.get("batch_stats", []))
    return Sample(queue_ns / 1e9, queued, infer_ns / 1e9, batches, rows)


class ServerMetrics:
    """Samples the server's counters; with ``auto``, whichever source answers first.

    Give it a client of its own: scrapes must not queue behind the load for a pooled connection.
    """

    def __init__(self, client: Client, model: str | None, source: str = "auto") -> None:
        self.client = client
        self.model = model
        self.source = source

    async def sample(self) -> Sample | None:
        try:
            return await self._sample()
        except Unreachable as exc:  # a missed scrape loses one window's server figures, no more
            log.warning("server metrics unavailable: %s", exc)
            return None

    async def _sample(self) -> Sample | None:
        if self.source in ("auto", "prometheus"):
            status, body = await self.client.get("/metrics")
            found = parse_prometheus(body.decode(), self.model) if status == 200 else None
            if found is not None:
                self.source = "prometheus"
                return found
        if self.source in ("auto", "triton") and self.model is not None:
            status, body = await self.client.get(f"/v2/models/{quote(self.model, safe='')}/stats")
            try:
                found = parse_triton(orjson.loads(body)) if status == 200 else None
            except orjson.JSONDecodeError:
                found = None
            if found is not None:
                self.source = "triton"
                return found
        if self.source == "auto":
            log.info("no server metrics at /metrics or the v2 stats endpoint; skipping them")
            self.source = "none"
        return None
