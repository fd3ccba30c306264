"""Spreading new connections evenly over the processes of ``fovea serve --workers N``.

The workers share one listening socket. Left to uvloop, the worker that wakes first accepts
every connection waiting in the backlog, so a client that opens a few keep-alive connections
at once often lands all of them on one worker: on 2 cores, with 4 or 16 connections, 6 runs in
31 put every connection on one worker, which then used ~1.3 cores and left a third of the
machine idle for as long as the connections lived. Each worker keeps one ONNX Runtime
runner per model, so it cannot absorb its neighbour's share.

Here each worker accepts one connection at a time and first looks at the open connections of
every worker: while another live worker holds fewer, it leaves the waiting
connection to that worker, retrying every ``RETRY_S``; after ``MAX_DEFER_S`` it takes the
connection itself, so a stalled neighbour delays a client by at most that. The counts live on
the workers' shared :class:`serving.core.worker_board.WorkerBoard`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from serving.core.worker_board import WorkerBoard

log = logging.getLogger(__name__)

RETRY_S = 0.002
MAX_DEFER_S = 0.05
_ACCEPT_ERROR_PAUSE_S = 1.0  # out of descriptors or buffers: what asyncio's own server waits


class BalancedListener:
    """Accepts from ``sock`` into ``protocol_factory``'s protocols, one connection at a time,
    deferring to less busy workers (see the module doc). Has the ``close()`` uvicorn's
    shutdown calls on the servers it started."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        board: WorkerBoard,
        open_connections: Callable[[], int],
        *,
        backlog: int,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self._factory = protocol_factory
        self._board = board
        self._open = open_connections
        self._pending = 0  # accepted, not yet handed to a protocol
        self._deferred_since: float | None = None
        self._resumed_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        sock.listen(backlog)
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._readable)

    def connections(self) -> int:
        return self._open() + self._pending

    def publish(self) -> None:
        """Tell the other workers how many connections this one holds (on every change)."""
        if not self._closed:
            self._board.publish_connections(self.connections())

    def _readable(self) -> None:
        now = self._loop.time()
        fewest = self._board.fewest_connections_elsewhere()
        if fewest is not None and self.connections() > fewest:
            # A readable right after a retry is the same waiting connection; later, a new one.
            if self._deferred_since is None or now - self._resumed_at > RETRY_S:
                self._deferred_since = now
            if now - self._deferred_since < MAX_DEFER_S:
                self._pause(RETRY_S)
                return
        self._deferred_since = None
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError):
            return  # another worker took it
        except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ENOMEM
            log.warning(
                "accepting a connection failed (%s); pausing accepts for %g s",
                exc,
                _ACCEPT_ERROR_PAUSE_S,
            )
            self._pause(_ACCEPT_ERROR_PAUSE_S)
            return
        self._pending += 1
        self.publish()
        task = self._loop.create_task(self._connect(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await self._loop.connect_accepted_socket(self._factory, sock=conn)
        except OSError:  # the client left before the hand-over
            conn.close()
        finally:
            self._pending -= 1
            self.publish()

    def _pause(self, seconds: float) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._timer = self._loop.call_later(seconds, self._resume)

    def _resume(self) -> None:
        self._timer = None
        if not self._closed:
            self._resumed_at = self._loop.time()
            self._loop.add_reader(self._sock.fileno(), self._readable)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._loop.remove_reader(self._sock.fileno())
        self._board.retire()
