"""Admission at the door: admit or refuse a request before any of its work starts.

The batcher's queue bound only sees rows that were already decoded; under overload the decode
backlog in front of it grew without limit (latency and memory with it). An :class:`Admission`
counts every row a model has accepted and not yet answered -- decoding, queued or running --
and refuses a request whose rows would exceed ``limit`` at once, with :class:`Overloaded`
(503 + ``Retry-After``), before its images are decoded. The bound then really bounds latency:
a request admitted behind ``limit`` rows waits for at most ``limit / throughput`` seconds.

A row count means different waits as throughput moves (a busier neighbour, a slower worker), so
a bound in time can be set too: ``max_wait_s`` refuses a request whose rows, and those ahead of
it, would take longer than that to answer at this model's recent rate. The rate is rows answered
per *busy* second (some row in flight), so an idle spell does not make the model look slow.

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
        max_wait_s: float | None = None,
        name: str = "model",
        on_reject: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.max_wait_s = max_wait_s
        self.name = name
        self._on_reject = on_reject
        self._clock = clock
        self._in_flight = 0
        self._done_rows = 0.0  # exponentially decayed rows completed ...
        self._busy_seconds = 0.0  # ... over this decayed busy time: the recent throughput
        self._last = clock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def rows_per_s(self) -> float | None:
        """Recent rows answered per busy second (about the last 10 s of work), or None before
        anything finished."""
        self._decay()
        return self._done_rows / self._busy_seconds if self._done_rows > 0 else None

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
        if self._in_flight and not self._fits(rows):
            self.refuse()
        self._decay()
        self._in_flight += rows

    @property
    def full(self) -> bool:
        """Whether even a one-row request would be refused now."""
        return self._in_flight > 0 and not self._fits(1)

    def _fits(self, rows: int) -> bool:
        if self._in_flight + rows > self.limit:
            return False
        if self.max_wait_s is None:
            return True
        rate = self.rows_per_s()
        return rate is None or (self._in_flight + rows) / rate <= self.max_wait_s

    def refuse(self) -> NoReturn:
        """Count a refusal and raise :class:`Overloaded` (503 + ``Retry-After``)."""
        if self._on_reject is not None:
            self._on_reject()
        wait = "" if self.max_wait_s is None else f", or {self.max_wait_s * 1000:.0f} ms of work"
        raise Overloaded(
            f"{self.name}: {self._in_flight} rows in flight (limit {self.limit} rows{wait}); "
            "retry later",
            retry_after_s=self.retry_after_s(),
        )

    def release(self, rows: int, *, completed: bool = True) -> None:
        self._decay()
        self._in_flight = max(0, self._in_flight - rows)
        if completed:
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
        """Age the sums to now. Called before every change of ``_in_flight``, so whether the
        model was busy held for the whole interval."""
        now = self._clock()
        dt, self._last = now - self._last, now
        if dt <= 0:
            return
        keep = 0.5 ** (dt / half_life_s)
        self._done_rows *= keep
        self._busy_seconds *= keep
        if self._in_flight:  # the same decay integrated over the busy interval
            self._busy_seconds += (1 - keep) * half_life_s / math.log(2)
