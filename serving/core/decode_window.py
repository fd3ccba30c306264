"""How many of a model version's admitted rows may be decoded ahead of its runner.

Admission bounds the rows a worker has accepted; left alone, the decode pool turns every one of
them into a model-ready tensor at once (MobileNetV2: 0.6 MB of float32 per row, against 35 KB
of JPEG), and they sit in the batcher's queue until the runner gets to them. Under overload that
was the whole growth of the server's memory (64 rows x 2 workers ~ 77 MB). The window lets a
request decode only when its rows fit among those decoded and not yet answered; the others wait
here, in arrival order, holding only their compressed bytes. A few batches' worth keeps the
runner fed, so throughput does not change.

Pure bookkeeping on one event loop, like :class:`serving.core.admission.Admission`.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from serving.core.deadline import Deadline
from serving.errors import DeadlineExceeded


class DecodeWindow:
    def __init__(self, rows: int) -> None:
        if rows < 1:
            raise ValueError("rows must be at least 1")
        self.rows = rows
        self._used = 0
        self._waiting: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    @property
    def used(self) -> int:
        return self._used

    @property
    def waiting(self) -> int:
        return sum(n for n, f in self._waiting if not f.done())

    @asynccontextmanager
    async def hold(self, rows: int, deadline: Deadline) -> AsyncIterator[None]:
        """``async with window.hold(n, deadline):`` decode and infer ``n`` rows inside.

        A request larger than the whole window goes alone, when the window is empty.
        """
        if not self._waiting and self._fits(rows):
            self._used += rows
        else:
            await self._wait(rows, deadline)
        try:
            yield
        finally:
            self._release(rows)

    async def _wait(self, rows: int, deadline: Deadline) -> None:
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((rows, granted))
        try:
            await asyncio.wait_for(asyncio.shield(granted), deadline.remaining_s())
        except BaseException as exc:
            if granted.done() and not granted.cancelled():
                self._release(rows)  # granted just as the wait ended: hand the rows on
            else:
                granted.cancel()
                self._wake()  # a cancelled head may have held back smaller requests
            if isinstance(exc, TimeoutError):
                raise DeadlineExceeded("deadline passed waiting to decode") from None
            raise

    def _fits(self, rows: int) -> bool:
        return self._used == 0 or self._used + rows <= self.rows

    def _release(self, rows: int) -> None:
        self._used -= rows
        self._wake()

    def _wake(self) -> None:
        while self._waiting:
            rows, granted = self._waiting[0]
            if granted.done():  # gave up while waiting
                self._waiting.popleft()
                continue
            if not self._fits(rows):
                return
            self._waiting.popleft()
            self._used += rows
            granted.set_result(None)
