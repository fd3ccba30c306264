"""Continuous batching of decoder steps: one decoder run per step over every sequence in flight.

Like the step loop of an LLM server: one thread keeps every active sequence (each a
:class:`BeamSearch` plus its image's fixed decoder inputs), and each step concatenates all their
live rows into one run of the decoder -- chunked at ``max_rows`` -- then hands each search its
slice of the outputs. A sequence that arrives joins at the next step; a finished one leaves and
its request is answered. Steps follow each other inside the thread: a step costs one model call
and no event-loop round trip, whatever the number of requests. The fixed inputs (image features)
are concatenated again only when the set of rows changes, not every step.

The thread starts with the first sequence and ends after ``idle_s`` without one, so a scheduler
whose decoder was unloaded leaves nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from serving.core.batching import BatchObserver
from serving.core.config import SequenceDecoding
from serving.core.runtime import Tensors
from serving.errors import DeadlineExceeded, Overloaded
from serving.tasks.caption.beam_search import BeamSearch

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Sequence:
    search: BeamSearch
    context: Tensors  # decoder inputs fixed for the whole sequence, one row each
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    deadline: float | None  # time.perf_counter() value
    ready_at: float = field(default_factory=time.perf_counter)  # since when it waits for a step
    gave_up: bool = False  # set by the request when it stops waiting


class StepScheduler:
    def __init__(
        self,
        run: Callable[[Tensors], Tensors],
        decoding: SequenceDecoding,
        *,
        max_rows: int,
        max_queued_rows: int,
        observer: BatchObserver | None = None,
        name: str = "decoder",
        idle_s: float = 5.0,
        thread_init: Callable[[], None] | None = None,
    ) -> None:
        """``run``: one decoder call on batched feeds. ``max_queued_rows`` bounds the rows of
        all sequences in flight (each counted at its beam size); beyond it requests are refused
        with :class:`Overloaded`. ``thread_init`` runs first on each step thread (the server
        lowers compute threads' priority, as for the batchers')."""
        self._run = run
        self._decoding = decoding
        self._max_rows = max_rows
        self._max_queued_rows = max_queued_rows
        self._observer = observer
        self.name = name
        self._idle_s = idle_s
        self._thread_init = thread_init
        self._inbox: queue.SimpleQueue[_Sequence] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards _thread and _reserved
        self._thread: threading.Thread | None = None
        self._reserved = 0  # rows of sequences submitted and not yet retired
        # owned by the step thread:
        self._active: list[_Sequence] = []
        self._layout: list[tuple[_Sequence, int]] = []
        self._context: Tensors = {}

    async def decode(self, search: BeamSearch, context: Tensors, *, deadline: float | None) -> None:
        """Run ``search`` to the end, its steps batched with every other sequence's."""
        rows = search.options.beam_size
        with self._lock:
            if self._reserved + rows > self._max_queued_rows:
                raise Overloaded(
                    f"{self.name}: {self._reserved} of {self._max_queued_rows} rows decoding; "
                    f"retry later"
                )
            self._reserved += rows
        loop = asyncio.get_running_loop()
        seq = _Sequence(search, context, loop, loop.create_future(), deadline)
        self._inbox.put(seq)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name=f"steps-{self.name}", daemon=True
                )
                self._thread.start()
        timeout = None if deadline is None else max(0.0, deadline - time.perf_counter())
        try:
            await asyncio.wait_for(seq.future, timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"{self.name}: decoding did not finish in time") from None
        finally:
            seq.gave_up = True  # if still decoding, the thread drops it at the next step

    # -- the step thread -------------------------------------------------------------------------
    def _serve(self) -> None:
        if self._thread_init is not None:
            self._thread_init()
        while True:
            if not self._active:
                try:
                    self._active.append(self._inbox.get(timeout=self._idle_s))
                except queue.Empty:
                    with self._lock:
                        if self._inbox.empty():
                            self._thread = None
                            self._layout, self._context = [], {}
                            return
                    continue
            while not self._inbox.empty():
                self._active.append(self._inbox.get_nowait())
            self._step()

    def _step(self) -> None:
        now = time.perf_counter()
        active = []
        for s in self._active:
            if s.gave_up:
                self._retire(s)
            elif s.deadline is not None and now >= s.deadline:
                self._retire(s, DeadlineExceeded(f"{self.name}: deadline passed while decoding"))
            else:
                active.append(s)
        self._active = active
        if not active:
            return
        layout = [(s, s.search.live) for s in active]
        try:
            waits = [now - s.ready_at for s, rows in layout for _ in range(rows)]
            out = self._run_chunked(self._feeds(layout), waits)
        except Exception as exc:  # a failed step fails the sequences in it, never the thread
            log.exception("%s: decoder step over %d sequences failed", self.name, len(active))
            for s in active:
                self._retire(s, exc)
            self._active = []
            return
        d = self._decoding
        log_probs = out[d.log_probs_output]
        states = {name: out[output] for name, output in d.state.items()}
        done = time.perf_counter()
        start, still = 0, []
        for s, rows in layout:
            end = start + rows
            s.search.advance(log_probs[start:end], {k: v[start:end] for k, v in states.items()})
            start = end
            if s.search.finished:
                self._retire(s)
            else:
                s.ready_at = done
                still.append(s)
        self._active = still

    def _feeds(self, layout: list[tuple[_Sequence, int]]) -> Tensors:
        """This step's decoder inputs: tokens and states of every live row, in layout order,
        and the fixed inputs repeated per row (rebuilt only when the layout changed)."""
        if len(layout) != len(self._layout) or any(
            s is not t or n != m for (s, n), (t, m) in zip(layout, self._layout, strict=True)
        ):
            names = layout[0][0].context
            self._context = {
                k: np.concatenate([np.broadcast_to(s.context[k], (n, *s.context[k].shape))
                                   for s, n in layout])
                for k in names
            }
            self._layout = layout
        searches = [s.search for s, _ in layout]
        feeds = {self._decoding.token_input: _join([s.tokens_in for s in searches])}
        for k in self._decoding.state:
            feeds[k] = _join([s.state[k] for s in searches])
        return {**feeds, **self._context}

    def _run_chunked(self, feeds: Tensors, waits: list[float]) -> Tensors:
        """One decoder call, or several of equal size up to ``max_rows`` rows, outputs
        concatenated; ``waits``: per row, how long it waited for this step (for the observer)."""
        total = len(waits)
        calls = -(-total // self._max_rows)
        size = -(-total // calls)
        outs = []
        for lo in range(0, total, size):
            hi = min(lo + size, total)
            chunk = feeds if hi - lo == total else {k: v[lo:hi] for k, v in feeds.items()}
            started = time.perf_counter()
            ok = False
            try:
                outs.append(self._run(chunk))
                ok = True
            finally:
                if self._observer is not None:
                    self._observer(
                        size=hi - lo,
                        queue_seconds=waits[lo:hi],
                        compute_seconds=time.perf_counter() - started,
                        ok=ok,
                    )
        if len(outs) == 1:
            return outs[0]
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

    def _retire(self, seq: _Sequence, exc: BaseException | None = None) -> None:
        with self._lock:
            self._reserved -= seq.search.options.beam_size
        if not seq.gave_up:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
                seq.loop.call_soon_threadsafe(_settle, seq.future, exc)


def _join(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():  # the request already gave up
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)
