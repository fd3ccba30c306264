"""A dynamic batcher: merges rows from concurrent requests into one call of a batch function.

It knows nothing of images or models: a row is any object, and ``run`` maps a list of rows to a
list of results of the same length. ``run`` is synchronous and executes on the batcher's own
thread pool, so the event loop keeps accepting requests while a batch runs.

Batch formation (per worker, when it is free):

* whatever is queued is taken at once, up to ``max_batch_size`` -- a lone request on an idle
  model waits for nothing, and rows that queued while the runner was busy form the next batch;
* if ``max_queue_delay_ms`` > 0 and fewer rows than the target size are queued, the worker
  waits until the target is reached or the *oldest* row has waited that long;
* with ``preferred_batch_sizes``, the largest preferred size that fits is sent and the rest
  stays queued for the next batch.

The queue is bounded (``max_queue_size`` rows); a submission that does not fit is rejected at
once with :class:`Overloaded`. Rows whose deadline passed while queued are dropped with
:class:`DeadlineExceeded` and never run. A failing batch is retried row by row, so one bad row
fails alone instead of poisoning the rows batched with it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from serving.errors import DeadlineExceeded, ModelUnavailable, Overloaded

log = logging.getLogger(__name__)

Row = TypeVar("Row")
Result = TypeVar("Result")


class BatchObserver(Protocol):
    def __call__(
        self, *, size: int, queue_seconds: Sequence[float], compute_seconds: float, ok: bool
    ) -> None: ...


@dataclass(frozen=True)
class BatchPolicy:
    max_batch_size: int = 8
    max_queue_delay_ms: float = 0.0
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_size: int = 256
    workers: int = 1


@dataclass(eq=False)
class _Pending:
    row: Any
    future: asyncio.Future[Any]
    enqueued: float
    deadline: float | None = None


class DynamicBatcher(Generic[Row, Result]):
    def __init__(
        self,
        run: Callable[[list[Row]], Sequence[Result]],
        policy: BatchPolicy,
        *,
        name: str = "batcher",
        observer: BatchObserver | None = None,
        thread_init: Callable[[], None] | None = None,
    ) -> None:
        """``thread_init`` runs once on each of the runner threads (e.g. to lower their
        priority)."""
        self._run = run
        self.policy = policy
        self.name = name
        self._observer = observer
        self._queue: collections.deque[_Pending] = collections.deque()
        self._arrived = asyncio.Event()
        self._collect_lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(
            policy.workers, thread_name_prefix=f"run-{name}", initializer=thread_init
        )
        self._workers = [asyncio.create_task(self._work()) for _ in range(policy.workers)]
        self._in_flight = 0
        self._closing = False

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def submit(self, rows: Sequence[Row], *, timeout_s: float | None = None) -> list[Result]:
        """Queue ``rows`` (one request's worth) and wait for their results, in order."""
        if self._closing:
            raise ModelUnavailable(f"{self.name} is shutting down")
        if not rows:
            return []
        if len(self._queue) + len(rows) > self.policy.max_queue_size:
            raise Overloaded(
                f"{self.name}: queue full ({len(self._queue)} of {self.policy.max_queue_size} "
                f"rows queued); retry later"
            )
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        deadline = None if timeout_s is None else now + timeout_s
        pending = [_Pending(r, loop.create_future(), now, deadline) for r in rows]
        self._queue.extend(pending)
        self._arrived.set()
        futures = [p.future for p in pending]
        try:
            done = await asyncio.wait_for(asyncio.gather(*futures), timeout_s)
        except TimeoutError:
            raise DeadlineExceeded(
                f"{self.name}: no result within {timeout_s * 1000:.0f} ms"
            ) from None
        finally:
            for f in futures:  # a queued row of an abandoned request is skipped, not run
                if not f.done():
                    f.cancel()
        return list(done)

    async def close(self, *, drain_timeout_s: float = 10.0) -> None:
        """Stop accepting rows, finish those queued (up to the timeout), stop the workers."""
        self._closing = True
        end = time.perf_counter() + drain_timeout_s
        while (self._queue or self._in_flight) and time.perf_counter() < end:
            await asyncio.sleep(0.005)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        for p in self._queue:
            if not p.future.done():
                p.future.set_exception(ModelUnavailable(f"{self.name} was unloaded"))
        self._queue.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _work(self) -> None:
        while True:
            async with self._collect_lock:
                batch = await self._collect()
                self._in_flight += len(batch)
            try:
                await self._execute(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one batch stop the worker
                log.exception("%s: batch of %d failed unexpectedly", self.name, len(batch))
            finally:
                self._in_flight -= len(batch)

    async def _collect(self) -> list[_Pending]:
        while True:
            self._drop_dead()
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            await self._fill_window()
            self._drop_dead()
            if self._queue:
                return [self._queue.popleft() for _ in range(self._batch_size(len(self._queue)))]

    async def _fill_window(self) -> None:
        """Wait for more rows, bounded by the oldest row's age, if the policy asks for it."""
        delay = self.policy.max_queue_delay_ms / 1000
        target = max(self.policy.preferred_batch_sizes, default=self.policy.max_batch_size)
        if delay <= 0:
            return
        until = self._queue[0].enqueued + delay
        while len(self._queue) < target:
            remaining = until - time.perf_counter()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    def _batch_size(self, queued: int) -> int:
        n = min(queued, self.policy.max_batch_size)
        fitting = [s for s in self.policy.preferred_batch_sizes if s <= n]
        return max(fitting) if fitting else n

    def _drop_dead(self) -> None:
        """Remove rows whose request gave up or whose deadline passed, failing the latter."""
        if not self._queue:
            return
        now = time.perf_counter()
        alive: collections.deque[_Pending] = collections.deque()
        for p in self._queue:
            if p.future.done():
                continue
            if p.deadline is not None and now >= p.deadline:
                p.future.set_exception(DeadlineExceeded(f"{self.name}: deadline passed in queue"))
                continue
            alive.append(p)
        if len(alive) != len(self._queue):
            self._queue = alive

    async def _execute(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        rows = [p.row for p in batch]
        try:
            results = await loop.run_in_executor(self._executor, self._run_checked, rows)
        except Exception as exc:
            self._observe(batch, started, ok=False)
            if len(batch) == 1:
                _resolve(batch[0], exc=exc)
                return
            log.warning(
                "%s: batch of %d failed (%s); retrying row by row", self.name, len(batch), exc
            )
            for p in batch:
                await self._execute([p])
            return
        self._observe(batch, started, ok=True)
        for p, result in zip(batch, results, strict=True):
            _resolve(p, result=result)

    def _run_checked(self, rows: list[Row]) -> Sequence[Result]:
        results = self._run(rows)
        if len(results) != len(rows):
            raise RuntimeError(
                f"batch function returned {len(results)} results for {len(rows)} rows"
            )
        return results

    def _observe(self, batch: list[_Pending], started: float, *, ok: bool) -> None:
        if self._observer is None:
            return
        self._observer(
            size=len(batch),
            queue_seconds=[started - p.enqueued for p in batch],
            compute_seconds=time.perf_counter() - started,
            ok=ok,
        )


def _resolve(p: _Pending, *, result: Any = None, exc: BaseException | None = None) -> None:
    if p.future.done():  # the request already gave up
        return
    if exc is not None:
        p.future.set_exception(exc)
    else:
        p.future.set_result(result)
