"""The highest load whose latency percentile stays under a budget.

Doubles the load from ``lo`` until a probe fails (or ``hi``), then bisects between the last pass
and the first failure. A probe fails on latency, on errors, or (open loop) when the server
completes noticeably fewer requests than were offered. At most ``max_probes`` probes run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from loadtest.runner import Step


@dataclass(frozen=True)
class Budget:
    latency_ms: float
    percentile: float = 99
    max_error_rate: float = 0.01
    min_completed: float = 0.95  # open loop: completed / sent (the server keeps up)

    def verdict(self, step: Step) -> str | None:
        """None when ``step`` meets the budget, else why it does not."""
        t = step.total
        if t.latency_ms is None:
            return "no successful request"
        observed = t.latency_ms.at(self.percentile)
        if observed > self.latency_ms:
            return f"p{self.percentile:g} {observed:.1f} ms > {self.latency_ms:g} ms"
        if t.error_rate > self.max_error_rate:
            return f"error rate {t.error_rate:.1%} > {self.max_error_rate:.1%}"
        if step.mode == "rate" and t.throughput < self.min_completed * t.offered_rate:
            return f"completed {t.throughput:.1f} of {t.offered_rate:.1f} req/s sent"
        return None


@dataclass
class SearchResult:
    budget: Budget
    probes: list[Step]
    verdicts: list[str | None]
    best: Step | None  # the passing probe with the highest throughput


async def search(
    probe: Callable[[float], Awaitable[Step]],
    budget: Budget,
    *,
    lo: float,
    hi: float,
    integer: bool,
    max_probes: int = 8,
    resolution: float = 0.05,
) -> SearchResult:
    probes: list[Step] = []
    verdicts: list[str | None] = []

    async def passes(x: float) -> bool:
        step = await probe(x)
        probes.append(step)
        verdicts.append(budget.verdict(step))
        return verdicts[-1] is None

    good: float | None = None
    bad: float | None = None
    x = lo
    while len(probes) < max_probes:
        if not await passes(x):
            bad = x
            break
        good = x
        if x >= hi:
            break
        x = min(hi, x * 2)
    while good is not None and bad is not None and len(probes) < max_probes:
        mid = (good + bad) // 2 if integer else (good + bad) / 2
        if mid <= good or (not integer and (bad - good) <= resolution * good):
            break
        if await passes(mid):
            good = mid
        else:
            bad = mid
    passing = [s for s, v in zip(probes, verdicts, strict=True) if v is None]
    best = max(passing, key=lambda s: s.total.throughput, default=None)
    return SearchResult(budget, probes, verdicts, best)
