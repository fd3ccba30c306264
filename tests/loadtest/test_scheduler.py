"""Closed and open loops against a stand-in whose behaviour is known exactly."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from loadtest.measure import MeasureSettings
from loadtest.runner import LoadSettings, Runner, Step
from loadtest.scheduler import arrival_offsets
from loadtest.transport import Client, PreparedRequest
from tests.loadtest.standin import StandIn

FAST = MeasureSettings(warmup_s=0.3, window_s=0.7, min_windows=2, max_windows=2)


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    with StandIn() as srv:
        yield srv


def run_step(url: str, path: str, load: LoadSettings, target: float,
             settings: MeasureSettings = FAST) -> Step:
    async def go() -> Step:
        async with Client(url, connections=256, timeout_s=5) as client:
            runner = Runner(client, [PreparedRequest(path, b"x")], load, settings)
            return await runner.step(target)

    return asyncio.run(go())


def test_arrival_offsets_rates() -> None:
    rng = np.random.default_rng(1)
    constant = list(zip(range(5), arrival_offsets(4.0, "constant", rng), strict=False))
    assert [t for _, t in constant] == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    poisson = np.fromiter((t for _, t in zip(range(20_001), arrival_offsets(100.0, "poisson", rng),
                                             strict=False)), float)
    gaps = np.diff(poisson)
    assert gaps.mean() == pytest.approx(0.01, rel=0.05)
    assert gaps.std() == pytest.approx(0.01, rel=0.05)  # exponential: std == mean


def test_closed_loop_throughput_is_concurrency_over_latency(standin: StandIn) -> None:
    step = run_step(standin.url, "/sleep?ms=100", LoadSettings("concurrency"), 4)
    t = step.total
    assert t.errors == {} and t.ok == t.requests > 0
    assert t.throughput == pytest.approx(40, rel=0.2)  # 4 in flight / 0.1 s each
    assert t.latency_ms is not None and t.latency_ms.p50 == pytest.approx(100, rel=0.3)
    assert sum(w.requests for w in step.windows) == t.requests


@pytest.mark.parametrize(("arrivals", "rate", "tolerance"),
                         [("constant", 60, 0.08), ("poisson", 200, 0.2)])  # Poisson: ~3 sigma
def test_open_loop_keeps_its_rate_when_the_server_is_slow(
    standin: StandIn, arrivals: str, rate: float, tolerance: float
) -> None:
    # Each reply takes 300 ms; a closed loop of one would manage 3.3 req/s. The open loop must
    # still send at the full rate, with rate * 0.3 requests in flight.
    step = run_step(standin.url, "/sleep?ms=300", LoadSettings("rate", arrivals), rate)
    t = step.total
    assert t.offered_rate == pytest.approx(rate, rel=tolerance)
    assert t.throughput == pytest.approx(rate, rel=0.25)
    assert t.latency_ms is not None and t.latency_ms.p50 == pytest.approx(300, rel=0.3)
    assert t.errors == {}


def test_open_loop_drops_beyond_max_inflight(standin: StandIn) -> None:
    step = run_step(standin.url, "/sleep?ms=300", LoadSettings("rate", max_inflight=3), 40)
    t = step.total
    assert t.errors.get("dropped", 0) > 0
    assert t.ok + sum(t.errors.values()) == t.requests
    assert any("dropped" in w for w in step.warnings)


def test_errors_are_counted_by_status_and_kept_out_of_latency(standin: StandIn) -> None:
    step = run_step(standin.url, "/fail?every=2", LoadSettings("concurrency"), 1)
    t = step.total
    assert set(t.errors) == {"500"}
    assert t.ok + t.errors["500"] == t.requests
    assert abs(t.ok - t.errors["500"]) <= 1 + len(step.windows)  # every other one fails
    assert t.error_rate == pytest.approx(0.5, abs=0.05)


def test_request_cap_ends_the_step_early(standin: StandIn) -> None:
    settings = MeasureSettings(warmup_s=0.1, window_s=5, min_windows=3, max_windows=3,
                               max_requests=20)
    step = run_step(standin.url, "/sleep?ms=10", LoadSettings("concurrency"), 2, settings)
    assert step.total.sent == 20 and step.capped
    assert step.total.duration_s < 2  # well before the 15 s the windows would take
