"""The dynamic batcher on its own: merging, delays, bounds, deadlines, failure isolation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from serving.core.batching import BatchPolicy, DynamicBatcher
from serving.errors import DeadlineExceeded, Overloaded


class Recorder:
    """A batch function that doubles numbers and remembers every batch it saw."""

    def __init__(self, delay_s: float = 0.0, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, rows: list[int]) -> list[int]:
        self.gate.wait(5)
        self.batches.append(list(rows))
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_on is not None and self.fail_on in rows:
            raise ValueError(f"row {self.fail_on} is poison")
        return [r * 2 for r in rows]


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def test_concurrent_requests_merge_into_batches() -> None:
    async def body() -> None:
        fn = Recorder()
        fn.gate.clear()  # hold the runner so requests pile up behind the first batch
        b = DynamicBatcher(fn, BatchPolicy(max_batch_size=4))
        tasks = [asyncio.create_task(b.submit([0]))]
        await asyncio.sleep(0.02)  # the runner took row 0 and is blocked
        tasks += [asyncio.create_task(b.submit([i])) for i in range(1, 9)]
        await asyncio.sleep(0.02)
        fn.gate.set()
        results = await asyncio.gather(*tasks)
        assert results == [[i * 2] for i in range(9)]
        assert [len(x) for x in fn.batches] == [1, 4, 4]  # first ran alone, rest merged
        assert sorted(r for batch in fn.batches for r in batch) == list(range(9))
        await b.close()

    run(body)


def test_lone_request_waits_for_nothing_without_delay() -> None:
    async def body() -> None:
        b = DynamicBatcher(Recorder(), BatchPolicy(max_batch_size=8, max_queue_delay_ms=0))
        started = time.perf_counter()
        assert await b.submit([3]) == [6]
        assert time.perf_counter() - started < 0.05
        await b.close()

    run(body)


def test_max_queue_delay_is_honoured() -> None:
    async def body() -> None:
        fn = Recorder()
        b = DynamicBatcher(fn, BatchPolicy(max_batch_size=8, max_queue_delay_ms=80))
        started = time.perf_counter()
        first = asyncio.create_task(b.submit([1]))
        await asyncio.sleep(0.02)
        second = asyncio.create_task(b.submit([2]))
        assert await first == [2] and await second == [4]
        waited = time.perf_counter() - started
        assert fn.batches == [[1, 2]]  # the window gathered both
        assert 0.07 <= waited < 0.4  # waited for the window, measured from the oldest row
        await b.close()

    run(body)


def test_full_batch_does_not_wait_for_the_delay() -> None:
    async def body() -> None:
        fn = Recorder()
        b = DynamicBatcher(fn, BatchPolicy(max_batch_size=2, max_queue_delay_ms=5_000))
        started = time.perf_counter()
        assert await b.submit([1, 2]) == [2, 4]
        assert time.perf_counter() - started < 1.0
        await b.close()

    run(body)


def test_preferred_batch_size_splits_the_queue() -> None:
    async def body() -> None:
        fn = Recorder()
        fn.gate.clear()
        b = DynamicBatcher(fn, BatchPolicy(max_batch_size=8, preferred_batch_sizes=(4,)))
        first = asyncio.create_task(b.submit([0]))
        await asyncio.sleep(0.02)
        rest = asyncio.create_task(b.submit(list(range(1, 7))))
        await asyncio.sleep(0.02)
        fn.gate.set()
        await first
        assert await rest == [2 * i for i in range(1, 7)]
        assert [len(x) for x in fn.batches] == [1, 4, 2]
        await b.close()

    run(body)


def test_full_queue_rejects_at_once() -> None:
    async def body() -> None:
        fn = Recorder()
        fn.gate.clear()
        b = DynamicBatcher(fn, BatchPolicy(max_batch_size=1, max_queue_size=3))
        running = asyncio.create_task(b.submit([0]))  # taken by the runner, blocked on the gate
        await asyncio.sleep(0.02)
        queued = asyncio.create_task(b.submit([1, 2, 3]))
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        with pytest.raises(Overloaded) as err:
            await b.submit([4])
        assert time.perf_counter() - started < 0.05
        assert err.value.status == 503 and err.value.headers == {"Retry-After": "1"}
        fn.gate.set()
        assert await running == [0] and await queued == [2, 4, 6]
        await b.close()

    run(body)


def test_deadline_expires_in_queue_and_row_never_runs() -> None:
    async def body() -> None:
        fn = Recorder(delay_s=0.15)
        b = DynamicBatcher(fn, BatchPolicy(max_batch_size=1))
        slow = asyncio.create_task(b.submit([1]))
        await asyncio.sleep(0.01)
        with pytest.raises(DeadlineExceeded):
            await b.submit([2], timeout_s=0.05)
        assert await slow == [2]
        assert await b.submit([3]) == [6]
        assert [1] in fn.batches and [2] not in fn.batches  # the expired row was dropped
        await b.close()

    run(body)


def test_multi_row_request_is_split_and_reassembled_in_order() -> None:
    async def body() -> None:
        fn = Recorder()
        b = DynamicBatcher(fn, BatchPolicy(max_batch_size=3))
        rows = list(range(10))
        assert await b.submit(rows) == [r * 2 for r in rows]
        assert [len(x) for x in fn.batches] == [3, 3, 3, 1]
        await b.close()

    run(body)


def test_failing_row_does_not_poison_its_batch_or_later_batches() -> None:
    async def body() -> None:
        fn = Recorder(fail_on=13)
        fn.gate.clear()
        b = DynamicBatcher(fn, BatchPolicy(max_batch_size=8))
        first = asyncio.create_task(b.submit([0]))
        await asyncio.sleep(0.02)
        good = [asyncio.create_task(b.submit([i])) for i in (1, 2)]
        bad = asyncio.create_task(b.submit([13]))
        await asyncio.sleep(0.02)
        fn.gate.set()
        await first
        assert [await g for g in good] == [[2], [4]]
        with pytest.raises(ValueError, match="poison"):
            await bad
        assert await b.submit([5]) == [10]  # the worker lives on
        assert [1, 2, 13] in fn.batches  # it was batched, failed, then retried row by row
        await b.close()

    run(body)


def test_observer_sees_every_batch() -> None:
    async def body() -> None:
        seen: list[tuple[int, bool]] = []

        def observer(*, size: int, queue_seconds: Any, compute_seconds: float, ok: bool) -> None:
            assert len(queue_seconds) == size and compute_seconds >= 0
            seen.append((size, ok))

        b = DynamicBatcher(Recorder(fail_on=7), BatchPolicy(max_batch_size=4), observer=observer)
        await b.submit([1, 2])
        with pytest.raises(ValueError):
            await b.submit([7])
        assert seen == [(2, True), (1, False)]
        await b.close()

    run(body)
