"""Load generators: a closed loop (fixed concurrency) and an open loop (fixed arrival rate).

The open loop schedules every send by the clock and never waits for a reply before the next
one, so a slow server meets the same arrivals (latency counts from the scheduled time, so a late
generator shows up as latency and as lag, not as a quietly lower rate).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterator

import numpy as np

from loadtest.recorder import Recorder
from loadtest.transport import DROPPED, Client, PreparedRequest

_LONG_WAIT_S = 0.05


async def closed_loop(
    client: Client,
    requests: list[PreparedRequest],
    concurrency: int,
    recorder: Recorder,
    stop: asyncio.Event,
) -> None:
    """``concurrency`` workers, each sending its next request as soon as the last one returns."""
    turn = itertools.count()  # shared, so every worker cycles through all the payloads

    async def worker() -> None:
        while not stop.is_set() and recorder.may_send():
            request = requests[next(turn) % len(requests)]
            started = recorder.on_send()
            status = await client.send(request)
            recorder.on_done(started, status, request.images)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def arrival_offsets(rate: float, arrivals: str, rng: np.random.Generator) -> Iterator[float]:
    """Send times in seconds from the start: evenly spaced, or a Poisson process."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    t = 0.0
    while True:
        yield t
        t += rng.exponential(1 / rate) if arrivals == "poisson" else 1 / rate


async def open_loop(
    client: Client,
    requests: list[PreparedRequest],
    offsets: Iterator[float],
    recorder: Recorder,
    stop: asyncio.Event,
    max_inflight: int,
) -> None:
    """Send at the given times; beyond ``max_inflight`` outstanding, count sends as dropped."""
    pending: set[asyncio.Task[None]] = set()

    async def one(request: PreparedRequest, scheduled: float) -> None:
        recorder.on_send(scheduled)
        status = await client.send(request)
        recorder.on_done(scheduled, status, request.images)

    start = time.monotonic()
    for k, offset in enumerate(offsets):
        scheduled = start + offset
        delay = scheduled - time.monotonic()
        if delay > _LONG_WAIT_S:  # wake early if told to stop: a slow rate never overruns a step
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        elif delay > 0:
            await asyncio.sleep(delay)  # the cheap path at high rates
        if stop.is_set() or not recorder.may_send():
            break
        request = requests[k % len(requests)]
        if len(pending) >= max_inflight:
            recorder.on_skip(DROPPED, request.images)
            continue
        task = asyncio.create_task(one(request, scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
