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

A prediction from the mean rate is right on average, so under a steady overload about half the
answers would come later than ``max_wait_s``: on a shared machine the rate jitters by a quarter
within a second, and it drops when overload starts (refusing costs CPU too). So a predicted wait
may fill only a *headroom* share of ``max_wait_s``, learned from the real waits (admitted to
answered) of requests answered while admission is refusing others: a late answer lowers it by a
step, an answer in time raises it by ``(1 - AIM) / AIM`` of a step, so at equilibrium ``AIM`` of
those answers come within ``max_wait_s`` (a stochastic-approximation quantile tracker). Answers
while nothing is refused say nothing about waits at the bound, so they teach nothing; the
headroom starts at one half, which covers the drop at the onset of the first overload.

Pure bookkeeping, no I/O, no locks: it lives on one event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

from serving.errors import Overloaded

AIM = 0.99  # the share of admitted answers that should come within max_wait_s
HEADROOM_STEP = 0.01  # how far one late answer lowers the headroom
MIN_HEADROOM = 0.25  # a model slower than max_wait_s alone still takes work in
FIRST_HEADROOM = 0.5  # covers the drop of the rate when the first overload starts
PRESSURE_S = 1.0  # answers within this long of a refusal teach the headroom
RATE_HALF_LIFE_S = 1.0  # the rate follows a drop within a second or two


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
        self._headroom = FIRST_HEADROOM
        self._refused_at = -math.inf

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def headroom(self) -> float:
        """The share of ``max_wait_s`` a predicted wait may fill (learned under pressure; 1
        without a bound in time)."""
        return self._headroom if self.max_wait_s is not None else 1.0

    def rows_per_s(self) -> float | None:
        """Recent rows answered per busy second (about the last few seconds of work), or None before
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
        return rate is None or (self._in_flight + rows) / rate <= self.max_wait_s * self._headroom

    def refuse(self) -> NoReturn:
        """Count a refusal and raise :class:`Overloaded` (503 + ``Retry-After``)."""
        self._refused_at = self._clock()
        if self._on_reject is not None:
            self._on_reject()
        wait = "" if self.max_wait_s is None else f", or {self.max_wait_s * 1000:.0f} ms of work"
        raise Overloaded(
            f"{self.name}: {self._in_flight} rows in flight (limit {self.limit} rows{wait}); "
            "retry later",
            retry_after_s=self.retry_after_s(),
        )

    def release(self, rows: int, *, completed: bool = True, waited_s: float | None = None) -> None:
        """Count ``rows`` out; ``waited_s``, admitted to answered, teaches the headroom."""
        self._decay()
        self._in_flight = max(0, self._in_flight - rows)
        if completed:
            self._done_rows += rows
        pressed = self._last - self._refused_at <= PRESSURE_S
        if waited_s is not None and self.max_wait_s is not None and pressed:
            if waited_s > self.max_wait_s:
                self._headroom = max(MIN_HEADROOM, self._headroom - HEADROOM_STEP)
            else:
                self._headroom = min(1.0, self._headroom + HEADROOM_STEP * (1 - AIM) / AIM)

    @contextmanager
    def admit(self, rows: int) -> Iterator[None]:
        """``with admission.admit(n):`` -- the rows count until the block exits."""
        self.try_acquire(rows)
        admitted = self._clock()
        ok = False
        try:
            yield
            ok = True
        finally:
            self.release(rows, completed=ok, waited_s=self._clock() - admitted if ok else None)

    def _decay(self, half_life_s: float = RATE_HALF_LIFE_S) -> None:
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
