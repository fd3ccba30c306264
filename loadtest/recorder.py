"""Raw samples of one load step, appended in completion order by the event loop.

Plain lists (no per-request objects) keep recording cheap; windows are slices of them.
"""

from __future__ import annotations

import asyncio
import time


class Recorder:
    def __init__(self) -> None:
        self.done_at: list[float] = []  # time.monotonic() at completion
        self.latency: list[float] = []  # seconds, from the (scheduled) send time
        self.status: list[int] = []  # HTTP status, or a code from loadtest.transport
        self.images: list[int] = []
        self.sent_at: list[float] = []  # actual send times, in order
        self.lag: list[float] = []  # open loop: seconds the send was late for its schedule
        self.inflight = 0
        self._cap: int | None = None
        self.finished = asyncio.Event()  # set once the request cap is reached and all are back

    def cap_after_now(self, requests: int | None) -> None:
        """Allow ``requests`` more sends from now on (None: no cap)."""
        self._cap = None if requests is None else len(self.sent_at) + requests

    def may_send(self) -> bool:
        return self._cap is None or len(self.sent_at) < self._cap

    def on_send(self, scheduled: float | None = None) -> float:
        now = time.monotonic()
        self.sent_at.append(now)
        if scheduled is not None:
            self.lag.append(now - scheduled)
        self.inflight += 1
        return now

    def on_done(self, since: float, status: int, images: int) -> None:
        now = time.monotonic()
        self.inflight -= 1
        self._append(now, now - since, status, images)

    def on_skip(self, status: int, images: int) -> None:
        """A request that was never sent (counted as an error, never as a latency)."""
        self._append(time.monotonic(), 0.0, status, images)

    def _append(self, now: float, latency: float, status: int, images: int) -> None:
        self.done_at.append(now)
        self.latency.append(latency)
        self.status.append(status)
        self.images.append(images)
        if self._cap is not None and not self.inflight and len(self.sent_at) >= self._cap:
            self.finished.set()
