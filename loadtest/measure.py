"""One load step: warm up, then measure windows until throughput is stable (or a cap is hit).

The controller only watches the clock and slices the recorder; the load runs undisturbed in its
own task. Every step is bounded by ``warmup + max_windows * window`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from loadtest.recorder import Recorder
from loadtest.server_metrics import ServerMetrics, delta
from loadtest.stats import Window, is_stable, summarize

Load = Callable[[Recorder, asyncio.Event], Awaitable[None]]


@dataclass(frozen=True)
class MeasureSettings:
    warmup_s: float = 2.0
    window_s: float = 4.0
    min_windows: int = 3  # also how many recent windows must agree to call it stable
    max_windows: int = 8
    stability: float = 0.1  # allowed spread of throughput around the recent mean
    max_requests: int | None = None  # measured requests per step, after the warm-up
    drain_s: float = 10.0  # wait this long for in-flight requests when a step ends


@dataclass
class Measurement:
    windows: list[Window]
    total: Window
    stable: bool
    capped: bool  # ended by the request cap (or the load ending) rather than by the clock


async def measure(
    load: Load,
    settings: MeasureSettings,
    metrics: ServerMetrics | None = None,
    on_window: Callable[[Window], None] | None = None,
) -> Measurement:
    rec, stop = Recorder(), asyncio.Event()
    task = asyncio.create_task(load(rec, stop))
    try:
        await _wait(rec, task, settings.warmup_s, watch_cap=False)
        rec.cap_after_now(settings.max_requests)
        origin = start = time.monotonic()
        first = lo = len(rec.done_at)
        cpu = time.thread_time()
        initial = before = await metrics.sample() if metrics else None
        windows: list[Window] = []
        while True:
            finished = await _wait(rec, task, settings.window_s, watch_cap=True)
            end, hi, cpu_now = time.monotonic(), len(rec.done_at), time.thread_time()
            after = await metrics.sample() if metrics else None
            window = summarize(rec, (lo, hi), (start, end), origin, cpu_now - cpu)
            if metrics and before and after:
                window.server = delta(before, after, metrics.source)
            windows.append(window)
            if on_window:
                on_window(window)
            stable = is_stable([w.throughput for w in windows], settings.stability,
                               settings.min_windows)
            if finished or len(windows) >= settings.max_windows or stable:
                break
            start, lo, cpu, before = end, hi, cpu_now, after
    finally:
        stop.set()
        await _drain(task, settings.drain_s)
    total = summarize(rec, (first, hi), (origin, end), origin, sum(w.client_cpu_s for w in windows))
    if metrics and initial and after:
        total.server = delta(initial, after, metrics.source)
    return Measurement(windows, total, stable, finished)


async def _wait(rec: Recorder, task: asyncio.Task[None], seconds: float, watch_cap: bool) -> bool:
    """Sleep ``seconds``; True early when the request cap is done or the load has ended."""
    waiters: set[asyncio.Future[object]] = {task}
    cap = asyncio.ensure_future(rec.finished.wait()) if watch_cap else None
    if cap is not None:
        waiters.add(cap)
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if cap is not None:
            cap.cancel()
    if task.done():
        task.result()  # re-raise a crashed load generator
        return True
    return rec.finished.is_set()


async def _drain(task: asyncio.Task[None], seconds: float) -> None:
    if task.done():
        return
    with contextlib.suppress(TimeoutError):  # wait_for cancels the stragglers
        await asyncio.wait_for(task, seconds)
