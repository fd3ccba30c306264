"""Figures over a measurement window: throughput, latency percentiles, errors by status.

Only successful (2xx) requests have a latency; failures are counted by status and never mixed in.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from loadtest.recorder import Recorder
from loadtest.server_metrics import ServerFigures
from loadtest.transport import status_name

PERCENTILES = (50, 90, 95, 99)


@dataclass
class Latency:
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    mean: float

    def at(self, percentile: float) -> float:
        return float(getattr(self, f"p{percentile:g}"))


@dataclass
class Window:
    start_s: float  # from the end of the warm-up
    duration_s: float
    requests: int  # completed (successes + failures)
    ok: int
    images: int  # images in successful requests
    sent: int
    errors: dict[str, int] = field(default_factory=dict)
    latency_ms: Latency | None = None
    client_cpu_s: float = 0.0
    lag_p99_ms: float | None = None  # open loop: how late the generator sent
    server: ServerFigures | None = None

    @property
    def throughput(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def images_per_s(self) -> float:
        return self.images / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def offered_rate(self) -> float:
        return self.sent / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return (self.requests - self.ok) / self.requests if self.requests else 0.0

    @property
    def client_cpu(self) -> float:
        """The generator's share of one core over the window."""
        return self.client_cpu_s / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def client_us_per_request(self) -> float | None:
        return 1e6 * self.client_cpu_s / self.sent if self.sent else None


def latency_summary(seconds: np.ndarray) -> Latency | None:
    if seconds.size == 0:
        return None
    ms = seconds * 1000.0
    p = np.percentile(ms, PERCENTILES)
    return Latency(*(float(v) for v in p), max=float(ms.max()), mean=float(ms.mean()))


def summarize(
    rec: Recorder,
    span: tuple[int, int],
    window: tuple[float, float],
    origin: float,
    client_cpu_s: float = 0.0,
) -> Window:
    """Figures for the requests completed in ``rec`` between indices ``span`` (times ``window``)."""
    lo, hi = span
    start, end = window
    status = np.asarray(rec.status[lo:hi], dtype=np.int64)
    latency = np.asarray(rec.latency[lo:hi], dtype=np.float64)
    images = np.asarray(rec.images[lo:hi], dtype=np.int64)
    ok = (status >= 200) & (status < 300)
    errors = Counter(status_name(int(s)) for s in status[~ok])
    s0, s1 = bisect_left(rec.sent_at, start), bisect_left(rec.sent_at, end)
    lag = None
    if rec.lag and s1 > s0:
        lag = float(np.percentile(np.asarray(rec.lag[s0:s1]), 99) * 1000.0)
    return Window(
        start_s=start - origin,
        duration_s=end - start,
        requests=int(status.size),
        ok=int(ok.sum()),
        images=int(images[ok].sum()),
        sent=s1 - s0,
        errors=dict(sorted(errors.items())),
        latency_ms=latency_summary(latency[ok]),
        client_cpu_s=client_cpu_s,
        lag_p99_ms=lag,
    )


def is_stable(throughputs: list[float], tolerance: float, last: int = 3) -> bool:
    """The last ``last`` windows' throughputs all lie within ``tolerance`` of their mean."""
    if len(throughputs) < last:
        return False
    recent = throughputs[-last:]
    mean = sum(recent) / last
    if mean == 0:
        return all(t == 0 for t in recent)
    return all(abs(t - mean) <= tolerance * mean for t in recent)
