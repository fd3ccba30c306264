"""Spreading new connections evenly over the processes of ``fovea serve --workers N``.

The workers share one listening socket. Left to uvloop, the worker that wakes first accepts
every connection waiting in the backlog, so a client that opens a few keep-alive connections
at once often lands all of them on one worker: on 2 cores, with 4 or 16 connections, about one
run in three put every connection on one worker, which then used ~1.3 cores and left a third of
the machine idle for as long as the connections lived. Each worker keeps one ONNX Runtime
runner per model, so it cannot absorb its neighbour's share.

Here each worker accepts one connection at a time and first looks at a shared board of open
connections per worker: while another live worker holds fewer, it leaves the waiting
connection to that worker, retrying every ``RETRY_S``; after ``MAX_DEFER_S`` it takes the
connection itself, so a stalled neighbour delays a client by at most that.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import mmap
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

SLOTS = 256  # workers one board can hold
_SLOT = struct.Struct("qq")  # pid, open connections
_RETIRED = 2**62  # a closed listener's count: nobody waits for it
RETRY_S = 0.002
MAX_DEFER_S = 0.05
_ACCEPT_ERROR_PAUSE_S = 1.0  # out of descriptors or buffers: what asyncio's own server waits


class ConnectionBoard:
    """One slot per live worker in a file under the workers' shared folder, claimed with an
    ``fcntl`` lock that the kernel drops when the worker dies, so a restarted worker reuses
    it. The counts are hints, written and read without a lock."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("r+b")
        self._map = mmap.mmap(self._file.fileno(), SLOTS * _SLOT.size)
        self._pid = os.getpid()
        self.slot = self._claim()
        self.publish(0)

    @staticmethod
    def create(path: Path) -> Path:
        """The empty board, made by the supervisor before it starts the workers."""
        path.write_bytes(bytes(SLOTS * _SLOT.size))
        return path

    def _claim(self) -> int:
        for slot in range(SLOTS):
            with contextlib.suppress(OSError):
                fcntl.lockf(
                    self._file, fcntl.LOCK_EX | fcntl.LOCK_NB, _SLOT.size, slot * _SLOT.size
                )
                return slot
        raise RuntimeError(f"more than {SLOTS} workers on one connection board")

    def publish(self, connections: int) -> None:
        _SLOT.pack_into(self._map, self.slot * _SLOT.size, self._pid, connections)

    def fewest_elsewhere(self) -> int | None:
        """The fewest open connections any other live worker holds; None when there is none."""
        fewest: int | None = None
        for slot in range(SLOTS):
            if slot == self.slot:
                continue
            pid, count = _SLOT.unpack_from(self._map, slot * _SLOT.size)
            if pid and (fewest is None or count < fewest) and _alive(pid):
                fewest = count
        return fewest

    def close(self) -> None:
        self.publish(_RETIRED)
        self._map.close()
        self._file.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BalancedListener:
    """Accepts from ``sock`` into ``protocol_factory``'s protocols, one connection at a time,
    deferring to less busy workers (see the module doc). Has the ``close()`` uvicorn's
    shutdown calls on the servers it started."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        board: ConnectionBoard,
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
            self._board.publish(self.connections())

    def _readable(self) -> None:
        now = self._loop.time()
        fewest = self._board.fewest_elsewhere()
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
        self._board.close()
