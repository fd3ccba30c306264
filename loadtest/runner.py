"""Runs load steps (one concurrency or one rate each) and says when a step's figures are suspect."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from loadtest.measure import MeasureSettings, measure
from loadtest.recorder import Recorder
from loadtest.scheduler import arrival_offsets, closed_loop, open_loop
from loadtest.server_metrics import ServerMetrics
from loadtest.stats import Window
from loadtest.transport import Client, PreparedRequest

CLIENT_CPU_LIMIT = 0.85  # share of the generator's one core beyond which it may be the bottleneck
LAG_LIMIT_MS = 10.0


@dataclass(frozen=True)
class LoadSettings:
    mode: str  # "concurrency" (closed loop) or "rate" (open loop)
    arrivals: str = "constant"  # open loop: constant | poisson
    max_inflight: int = 1024  # open loop: outstanding requests before sends are dropped
    seed: int = 0


@dataclass
class Step:
    mode: str
    target: float  # concurrency or requests/s
    windows: list[Window]
    total: Window
    stable: bool
    capped: bool = False  # ended by --max-requests
    warnings: list[str] = field(default_factory=list)


class Runner:
    def __init__(
        self,
        client: Client,
        requests: list[PreparedRequest],
        load: LoadSettings,
        settings: MeasureSettings,
        metrics: ServerMetrics | None = None,
        on_window: Callable[[float, Window], None] | None = None,
    ) -> None:
        self.client = client
        self.requests = requests
        self.load = load
        self.settings = settings
        self.metrics = metrics
        self.on_window = on_window

    async def step(self, target: float) -> Step:
        load, settings = self.load, self.settings
        if load.mode == "rate" and load.arrivals == "poisson":
            # Poisson counts in a window vary by 1/sqrt(n): do not call that instability.
            noise = 2 / math.sqrt(max(1.0, target * settings.window_s))
            settings = dataclasses.replace(settings, stability=max(settings.stability, noise))

        async def generate(rec: Recorder, stop: asyncio.Event) -> None:
            if load.mode == "concurrency":
                await closed_loop(self.client, self.requests, int(target), rec, stop)
            else:
                offsets = arrival_offsets(target, load.arrivals, np.random.default_rng(load.seed))
                await open_loop(self.client, self.requests, offsets, rec, stop, load.max_inflight)

        def report(window: Window) -> None:
            if self.on_window:
                self.on_window(target, window)

        m = await measure(generate, settings, self.metrics, report)
        step = Step(load.mode, target, m.windows, m.total, m.stable, m.capped)
        step.warnings = self._warnings(step, settings)
        return step

    def _warnings(self, step: Step, s: MeasureSettings) -> list[str]:
        t = step.total
        out = []
        if step.capped and not step.stable:
            out.append(f"request cap reached after {len(step.windows)} window(s), too few to "
                       "judge stability")
        elif not step.stable:
            out.append(
                f"throughput not stable within ±{s.stability:.0%} after {len(step.windows)} windows"
            )
        if t.client_cpu > CLIENT_CPU_LIMIT:
            out.append(
                f"load generator busy {t.client_cpu:.0%} of its core: it may be the bottleneck"
            )
        if step.mode == "rate":
            expected = step.target * t.duration_s
            slack = 3 * math.sqrt(expected) if self.load.arrivals == "poisson" else 1
            if t.sent < 0.95 * expected - slack:
                out.append(
                    f"sent {t.offered_rate:.1f} req/s of the {step.target:g} req/s target"
                )
            if t.lag_p99_ms is not None and t.lag_p99_ms > LAG_LIMIT_MS:
                out.append(f"generator sent up to {t.lag_p99_ms:.1f} ms late (p99)")
            dropped = t.errors.get("dropped", 0)
            if dropped:
                out.append(
                    f"{dropped} sends dropped: over {self.load.max_inflight} requests in flight"
                )
        return out
