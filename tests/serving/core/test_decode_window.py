"""The decode window: admitted rows wait, in order, before they are decoded into tensors."""

from __future__ import annotations

import asyncio

import pytest

from serving.core.deadline import Deadline
from serving.core.decode_window import DecodeWindow
from serving.errors import DeadlineExceeded


def _far() -> Deadline:
    return Deadline.after_ms(10_000)


def test_rows_beyond_the_window_wait_in_order_and_go_as_rows_are_answered() -> None:
    async def main() -> None:
        window = DecodeWindow(3)
        order: list[str] = []
        release = {name: asyncio.Event() for name in "abcd"}

        async def request(name: str, rows: int) -> None:
            async with window.hold(rows, _far()):
                order.append(name)
                await release[name].wait()

        tasks = [
            asyncio.create_task(request(n, r)) for n, r in zip("abcd", (2, 1, 2, 1), strict=True)
        ]
        await asyncio.sleep(0.01)
        assert order == ["a", "b"] and window.used == 3 and window.waiting == 3
        release["b"].set()  # 1 row frees: c (2 rows) still does not fit, and d waits behind c
        await asyncio.sleep(0.01)
        assert order == ["a", "b"] and window.used == 2
        release["a"].set()
        await asyncio.sleep(0.01)
        assert order == ["a", "b", "c", "d"] and window.used == 3
        release["c"].set()
        release["d"].set()
        await asyncio.gather(*tasks)
        assert window.used == 0 and window.waiting == 0

    asyncio.run(main())


def test_a_request_larger_than_the_window_goes_alone() -> None:
    async def main() -> None:
        window = DecodeWindow(2)
        async with window.hold(5, _far()):
            assert window.used == 5
        assert window.used == 0

    asyncio.run(main())


def test_deadline_and_cancellation_while_waiting_free_the_queue() -> None:
    async def main() -> None:
        window = DecodeWindow(1)
        async with window.hold(1, _far()):
            with pytest.raises(DeadlineExceeded):
                async with window.hold(1, Deadline.after_ms(20)):
                    pass
            gone = window.hold(1, _far())
            cancelled = asyncio.create_task(gone.__aenter__())
            await asyncio.sleep(0.01)
            cancelled.cancel()
            await asyncio.gather(cancelled, return_exceptions=True)
            held = window.hold(1, _far())  # kept: collecting it would release its rows
            later = asyncio.create_task(held.__aenter__())
            await asyncio.sleep(0.01)
            assert not later.done()  # the window is still held
        await asyncio.sleep(0.01)
        assert later.done() and window.used == 1  # neither the late nor the cancelled one blocks it
        assert window.waiting == 0
        await held.__aexit__(None, None, None)
        assert window.used == 0

    asyncio.run(main())
