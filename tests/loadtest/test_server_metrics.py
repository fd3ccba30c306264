"""Server figures from the server's real exporters (Prometheus text and Triton statistics)."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from loadtest.server_metrics import delta, parse_prometheus, parse_triton
from serving.core.metrics import BatchRecorder, Metrics


def feed(recorder: BatchRecorder, metrics: Metrics) -> None:
    recorder(size=4, queue_seconds=[0.001, 0.002, 0.003, 0.002], compute_seconds=0.02, ok=True)
    recorder(size=2, queue_seconds=[0.004, 0.004], compute_seconds=0.01, ok=True)
    metrics.queue_depth.labels("m", "1").set(3)


def test_prometheus_deltas() -> None:
    metrics = Metrics()
    recorder = BatchRecorder(metrics, "m", "1")
    BatchRecorder(metrics, "other", "1")(size=8, queue_seconds=[1.0] * 8, compute_seconds=1.0,
                                          ok=True)
    before = parse_prometheus(generate_latest(metrics.registry).decode(), "m")
    feed(recorder, metrics)
    after = parse_prometheus(generate_latest(metrics.registry).decode(), "m")
    assert before is not None and after is not None
    figures = delta(before, after, "prometheus")
    assert figures.batches == 2
    assert figures.batch_size == pytest.approx(3.0)
    assert figures.queue_ms == pytest.approx(16 / 6)
    assert figures.infer_ms == pytest.approx(15.0)
    assert figures.queue_depth == 3
    assert parse_prometheus(generate_latest(metrics.registry).decode(), "absent") is None


def test_triton_statistics_deltas() -> None:
    metrics = Metrics()
    recorder = BatchRecorder(metrics, "m", "1")
    before = parse_triton({"model_stats": [recorder.stats.as_dict("m", "1")]})
    feed(recorder, metrics)
    after = parse_triton({"model_stats": [recorder.stats.as_dict("m", "1")]})
    assert before is not None and after is not None
    figures = delta(before, after, "triton")
    assert (figures.batches, figures.batch_size) == (2, pytest.approx(3.0))
    assert figures.queue_ms == pytest.approx(16 / 6, rel=1e-3)
    assert figures.infer_ms == pytest.approx(15.0, rel=1e-3)
    assert parse_triton({"model_stats": []}) is None
