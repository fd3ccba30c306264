"""Prometheus metrics (``/metrics``) and Triton-style per-version statistics (``.../stats``).

Both are fed from the same two places: the batcher's per-batch observer and the HTTP layer's
per-request hook. The registry belongs to one app, so several apps (tests) never share counters.

With several worker processes (``PROMETHEUS_MULTIPROC_DIR`` set before this module is
imported, as ``fovea serve --workers N`` does), every worker writes its values to files in that
folder and ``/metrics`` in any worker reports the sum over all of them. Gauges are sampled
(:meth:`Metrics.sample_gauges`) rather than computed on scrape, since a scrape in one worker
cannot call functions in another; each worker samples them every second.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.035,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, resident memory, open fds
        self.requests = Counter(
            "fovea_requests",
            "HTTP requests by endpoint, model and status",
            ["endpoint", "model", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "fovea_request_duration_seconds",
            "end-to-end request latency",
            ["endpoint", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_seconds = Histogram(
            "fovea_queue_duration_seconds",
            "time a row waited in the batch queue",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "fovea_inference_duration_seconds",
            "ONNX Runtime time per batch",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "fovea_batch_size",
            "rows per ONNX Runtime call",
            ["model", "version"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "fovea_queue_depth",
            "rows waiting in the batch queue",
            ["model", "version"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.in_flight = Gauge(
            "fovea_rows_in_flight",
            "rows admitted and not yet answered (decoding, queued or running)",
            ["model", "version"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.headroom = Gauge(
            "fovea_admission_headroom",
            "share of batching.max_wait_ms a predicted wait may fill, learned under overload so "
            "that 99% of answers come within it (1 without max_wait_ms; the lowest worker's)",
            ["model", "version"],
            registry=r,
            multiprocess_mode="livemin",
        )
        self._samplers: dict[tuple[Gauge, tuple[str, ...]], Callable[[], float]] = {}
        self.rejected = Counter(
            "fovea_rejected",
            "requests refused at the door (503) because the model's rows in flight were full",
            ["model", "version"],
            registry=r,
        )
        self.failures = Counter(
            "fovea_failures",
            "failed batches and rejected rows",
            ["model", "version", "reason"],
            registry=r,
        )

    def track(self, gauge: Gauge, labels: tuple[str, ...], value: Callable[[], float]) -> None:
        """Sample ``value()`` into ``gauge{labels}`` at every :meth:`sample_gauges`."""
        self._samplers[(gauge, labels)] = value

    def untrack(self, gauge: Gauge, labels: tuple[str, ...]) -> None:
        if self._samplers.pop((gauge, labels), None) is not None:
            gauge.labels(*labels).set(0)  # a dead series must not keep adding to the sum
            if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # files keep series until exit
                gauge.remove(*labels)

    def sample_gauges(self) -> None:
        for (gauge, labels), value in list(self._samplers.items()):
            gauge.labels(*labels).set(value())

    def exposition(self) -> bytes:
        """The Prometheus text for this server: this process, or the sum over all workers."""
        self.sample_gauges()
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not folder:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)
        return generate_latest(registry)


@dataclass
class _Duration:
    count: int = 0
    ns: int = 0

    def add(self, seconds: float, count: int = 1) -> None:
        self.count += count
        self.ns += int(seconds * 1e9)

    def as_dict(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass
class VersionStats:
    """The fields of Triton's statistics extension that we can measure honestly."""

    inference_count: int = 0
    execution_count: int = 0
    last_inference_ms: int = 0
    success: _Duration = field(default_factory=_Duration)
    fail: _Duration = field(default_factory=_Duration)
    queue: _Duration = field(default_factory=_Duration)
    compute_infer: _Duration = field(default_factory=_Duration)
    batches: dict[int, _Duration] = field(default_factory=dict)

    def as_dict(self, name: str, version: str) -> dict[str, Any]:
        return {
            "name": name,
            "version": version,
            "last_inference": self.last_inference_ms,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                "success": self.success.as_dict(),
                "fail": self.fail.as_dict(),
                "queue": self.queue.as_dict(),
                "compute_infer": self.compute_infer.as_dict(),
            },
            "batch_stats": [
                {"batch_size": size, "compute_infer": d.as_dict()}
                for size, d in sorted(self.batches.items())
            ],
        }


class BatchRecorder:
    """The batcher's observer for one model version: updates stats and Prometheus together.

    Called from the event loop (the batcher) and from the caption decoder's step thread, so the
    plain counters of the stats update under a lock.
    """

    def __init__(self, metrics: Metrics, model: str, version: str) -> None:
        self.stats = VersionStats()
        self._lock = threading.Lock()
        self._queue = metrics.queue_seconds.labels(model, version)
        self._infer = metrics.inference_seconds.labels(model, version)
        self._size = metrics.batch_size.labels(model, version)
        self._failed = metrics.failures.labels(model, version, "batch_failed")

    def __call__(
        self,
        *,
        size: int,
        queue_seconds: list[float] | tuple[float, ...],
        compute_seconds: float,
        ok: bool,
    ) -> None:
        s = self.stats
        waited = sum(queue_seconds)
        with self._lock:
            if ok:
                s.inference_count += size
                s.execution_count += 1
                s.last_inference_ms = int(time.time() * 1000)
                s.success.add(waited + compute_seconds * size, size)
                s.queue.add(waited, size)
                s.compute_infer.add(compute_seconds * size, size)
                s.batches.setdefault(size, _Duration()).add(compute_seconds)
            else:
                s.fail.add(waited + compute_seconds * size, size)
        if ok:
            for q in queue_seconds:
                self._queue.observe(q)
            self._infer.observe(compute_seconds)
            self._size.observe(size)
        else:
            self._failed.inc()
