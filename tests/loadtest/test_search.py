"""The latency-budget search on a modelled server: p99 = 10 ms * concurrency (or rate / 10)."""

from __future__ import annotations

import asyncio

from loadtest.runner import Step
from loadtest.search import Budget, search
from loadtest.stats import Latency, Window


def modelled(mode: str, target: float, errors: int = 0) -> Step:
    p99 = 10.0 * target if mode == "concurrency" else target / 10
    served = target * 10 if mode == "concurrency" else min(target, 300.0)
    lat = Latency(p99 / 2, p99 * 0.9, p99 * 0.95, p99, p99 * 1.1, p99 / 2)
    sent = int(target if mode == "rate" else served) + errors  # open loop: offered at the target
    total = Window(0, 1.0, int(served) + errors, int(served), int(served), sent,
                   {"503": errors} if errors else {}, lat)
    return Step(mode, target, [total], total, True)


def run(mode: str, budget: Budget, **kw: float) -> tuple[list[float], Step | None]:
    probed: list[float] = []

    async def probe(x: float) -> Step:
        probed.append(x)
        return modelled(mode, x)

    result = asyncio.run(search(probe, budget, integer=mode == "concurrency", **kw))
    return probed, result.best


def test_concurrency_doubles_then_bisects_to_the_limit() -> None:
    probed, best = run("concurrency", Budget(75), lo=1, hi=64)
    assert probed == [1, 2, 4, 8, 6, 7]
    assert best is not None and best.target == 7


def test_rate_search_stops_when_the_server_cannot_keep_up() -> None:
    # Latency allows 1000 req/s, but the model serves at most 300: 320 fails on completion.
    probed, best = run("rate", Budget(100), lo=10, hi=10_000, max_probes=12)
    assert best is not None and 280 <= best.target <= 300
    assert len(probed) <= 12


def test_probe_cap_and_no_answer() -> None:
    probed, best = run("concurrency", Budget(5), lo=1, hi=64)
    assert probed == [1] and best is None
    probed, _ = run("concurrency", Budget(10_000), lo=1, hi=1024, max_probes=4)
    assert probed == [1, 2, 4, 8]


def test_verdicts() -> None:
    b = Budget(50, percentile=99, max_error_rate=0.01)
    assert b.verdict(modelled("concurrency", 4)) is None
    assert "p99" in (b.verdict(modelled("concurrency", 6)) or "")
    assert "error rate" in (b.verdict(modelled("concurrency", 4, errors=5)) or "")
    assert Budget(20, percentile=50).verdict(modelled("concurrency", 3)) is None
