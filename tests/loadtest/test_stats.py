"""Window figures from hand-made samples, where every number can be checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.recorder import Recorder
from loadtest.stats import is_stable, latency_summary, summarize
from loadtest.transport import TIMEOUT


def recorder(samples: list[tuple[float, float, int, int]]) -> Recorder:
    """(sent_at, latency_s, status, images) -> a recorder in completion order."""
    rec = Recorder()
    for sent, latency, status, images in sorted(samples, key=lambda s: s[0] + s[1]):
        rec.sent_at.append(sent)
        rec.done_at.append(sent + latency)
        rec.latency.append(latency)
        rec.status.append(status)
        rec.images.append(images)
    rec.sent_at.sort()
    return rec


def test_percentiles_are_ordered_and_exact() -> None:
    lat = latency_summary(np.arange(1, 101) / 1000)  # 1..100 ms
    assert lat is not None
    assert (lat.p50, lat.p90, lat.p99, lat.max) == pytest.approx((50.5, 90.1, 99.01, 100))
    assert lat.p50 <= lat.p90 <= lat.p95 <= lat.p99 <= lat.max
    assert lat.at(95) == lat.p95
    assert latency_summary(np.array([])) is None


def test_failures_are_counted_by_status_and_excluded_from_latency() -> None:
    samples = [(i * 0.1, 0.010, 200, 2) for i in range(8)]
    samples += [(0.05, 5.0 - 0.05 - 1e-3, 503, 2), (0.15, 0.5, TIMEOUT, 2)]
    rec = recorder(samples)
    w = summarize(rec, (0, len(rec.done_at)), (0.0, 5.0), origin=0.0, client_cpu_s=0.5)
    assert (w.requests, w.ok, w.images, w.sent) == (10, 8, 16, 10)
    assert w.errors == {"503": 1, "timeout": 1}
    assert w.error_rate == pytest.approx(0.2)
    assert w.latency_ms is not None and w.latency_ms.max == pytest.approx(10)  # no 5 s outlier
    assert w.throughput == pytest.approx(8 / 5) and w.images_per_s == pytest.approx(16 / 5)
    assert w.client_cpu == pytest.approx(0.1) and w.client_us_per_request == pytest.approx(5e4)


def test_windows_partition_the_samples() -> None:
    rec = recorder([(i * 0.01, 0.005, 200, 1) for i in range(300)])  # 3 s at 100 req/s
    cuts = [0, *(int(np.searchsorted(rec.done_at, t)) for t in (1.0, 2.0)), len(rec.done_at)]
    windows = [summarize(rec, (cuts[i], cuts[i + 1]), (float(i), float(i + 1)), 0.0)
               for i in range(3)]
    total = summarize(rec, (0, cuts[-1]), (0.0, 3.0), 0.0)
    assert sum(w.requests for w in windows) == total.requests == 300
    assert sum(w.sent for w in windows) == total.sent
    assert [w.throughput for w in windows] == pytest.approx([100, 100, 100], abs=1)


def test_stability_needs_the_last_windows_to_agree() -> None:
    assert not is_stable([100, 100], 0.1)
    assert is_stable([50, 100, 104, 96], 0.1)
    assert not is_stable([100, 104, 80], 0.1)
    assert is_stable([0, 0, 0], 0.1)
