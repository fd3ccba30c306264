"""The batch observer updates Triton-style statistics and Prometheus series together."""

from __future__ import annotations

from prometheus_client import generate_latest

from serving.core.metrics import BatchRecorder, Metrics


def test_recorder_feeds_stats_and_prometheus() -> None:
    metrics = Metrics()
    record = BatchRecorder(metrics, "m", "1")
    record(size=4, queue_seconds=[0.001] * 4, compute_seconds=0.02, ok=True)
    record(size=2, queue_seconds=[0.0, 0.0], compute_seconds=0.01, ok=False)
    stats = record.stats.as_dict("m", "1")
    assert stats["inference_count"] == 4 and stats["execution_count"] == 1
    assert [b["batch_size"] for b in stats["batch_stats"]] == [4]
    assert stats["inference_stats"]["fail"]["count"] == 2
    text = generate_latest(metrics.registry).decode()
    assert 'fovea_batch_size_count{model="m",version="1"} 1.0' in text
    assert 'fovea_failures_total{model="m",reason="batch_failed",version="1"} 1.0' in text
