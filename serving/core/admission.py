"""Admission at the door: admit or refuse a request before any of its work starts.

The batcher's queue bound only sees rows that were already decoded; under overload the decode
backlog in front of it grew without limit (latency and memory with it). An :class:`Admission`
counts every row a model has accepted and not yet answered -- decoding, queued or running --
and refuses a request whose rows would exceed ``limit`` at once, with :class:`Overloaded`
(503 + ``Retry-After``), before its images are decoded. The bound then really bounds latency:
a request admitted behind ``limit`` rows waits for at most ``limit / throughput`` seconds.

Pure bookkeeping, no I/O, no locks: it lives on one event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

from serving.errors import Overloaded


class Admission:
    def __init__(
        self,
        limit: int,
        *,
        name: str = "model",
        on_reject: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.name = name
        self._on_reject = on_reject
        self._clock = clock
        self._in_flight = 0
        self._done_rows = 0.0  # exponentially decayed rows completed ...
        self._done_seconds = 0.0  # ... over this decayed time: the recent throughput
        self._last = clock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def rows_per_s(self) -> float | None:
        """Recent completion rate (about the last 10 s), or None before anything finished."""
        self._decay()
        return self._done_rows / self._done_seconds if self._done_rows > 0 else None

    def retry_after_s(self) -> int:
        """Seconds until the rows in flight should have drained, at the recent rate (>= 1)."""
        rate = self.rows_per_s()
        if not rate:
            return 1
        return max(1, math.ceil(self._in_flight / rate))

    def try_acquire(self, rows: int) -> None:
        """Count ``rows`` in, or raise :class:`Overloaded` if they do not fit.

        A request larger than the whole limit is still admitted when nothing else is in
        flight, so a big (valid) batch is slow rather than impossible.
        """
        if self._in_flight and self._in_flight + rows > self.limit:
            self.refuse()
        self._in_flight += rows

    @property
    def full(self) -> bool:
        """Whether even a one-row request would be refused now."""
        return self._in_flight >= self.limit

    def refuse(self) -> NoReturn:
        """Count a refusal and raise :class:`Overloaded` (503 + ``Retry-After``)."""
        if self._on_reject is not None:
            self._on_reject()
        raise Overloaded(
            f"{self.name}: {self._in_flight} rows in flight (limit {self.limit}); retry later",
            retry_after_s=self.retry_after_s(),
        )

    def release(self, rows: int, *, completed: bool = True) -> None:
        self._in_flight = max(0, self._in_flight - rows)
        if completed:
            self._decay()
            self._done_rows += rows

    @contextmanager
    def admit(self, rows: int) -> Iterator[None]:
        """``with admission.admit(n):`` -- the rows count until the block exits."""
        self.try_acquire(rows)
        ok = False
        try:
            yield
            ok = True
        finally:
            self.release(rows, completed=ok)

    def _decay(self, half_life_s: float = 5.0) -> None:
        now = self._clock()
        dt, self._last = now - self._last, now
        if dt <= 0:
            return
        keep = 0.5 ** (dt / half_life_s)
        self._done_rows *= keep
        # the same decay integrated over the interval, so rows / seconds is a weighted rate
        self._done_seconds = self._done_seconds * keep + (1 - keep) * half_life_s / math.log(2)
