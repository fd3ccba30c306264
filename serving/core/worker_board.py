"""What each worker process of one server is doing now: open connections and runs in flight.

With ``fovea serve --workers N`` each worker owns a slot in a small file in the workers' shared
folder; serving alone, a process keeps its one slot in memory. The connection counts let a
worker leave a new connection to a less busy one (:mod:`serving.http.balance`); the counts of
ONNX Runtime runs in flight let a run that starts while the machine runs nothing else use every
core (:class:`serving.core.runtime.OnnxModel`). Slots are claimed with an ``fcntl`` lock,
which the kernel drops when a worker dies, so a restarted worker takes a free slot again. The
counts are hints: written and read without a lock across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from serving.core.processes import alive

SLOTS = 256  # workers one board can hold
_FIELDS = 3  # pid, open connections, runs in flight
_PID, _CONNECTIONS, _RUNS = range(_FIELDS)
_ROW_BYTES = _FIELDS * 8
RETIRED = 2**62  # a closed listener's connection count: never the fewest


def board_file(shared_dir: Path) -> Path:
    """Where the workers sharing ``shared_dir`` keep their board."""
    return shared_dir / "workers.board"


class WorkerBoard:
    _opened: ClassVar[dict[Path | None, WorkerBoard]] = {}
    _opening = threading.Lock()

    def __init__(self, path: Path | None) -> None:
        """A slot on the board file at ``path``, or a private one-slot board for ``None``.
        Use :meth:`for_process`: fcntl locks belong to a process, not to one open file."""
        if path is None:
            self._map = mmap.mmap(-1, _ROW_BYTES)
            self.slot = 0
        else:
            self._file = path.open("r+b")
            self._map = mmap.mmap(self._file.fileno(), SLOTS * _ROW_BYTES)
            self.slot = self._claim()
        self._rows = np.frombuffer(self._map, dtype=np.int64).reshape(-1, _FIELDS)
        self._pid = os.getpid()
        self._rows[self.slot] = (self._pid, 0, 0)
        self._runs = threading.Lock()  # runs are counted from several runner threads

    @classmethod
    def for_process(cls, path: Path | None) -> WorkerBoard:
        """This process's slot on ``path`` (a private board for ``None``), opened once."""
        with cls._opening:
            board = cls._opened.get(path)
            if board is None or board._pid != os.getpid():
                board = cls._opened[path] = cls(path)
            return board

    @classmethod
    def for_shared_dir(cls, shared_dir: Path | None) -> WorkerBoard:
        """The board of the workers sharing ``shared_dir``; a private one when the process
        serves alone (no shared folder, or one without a board)."""
        path = board_file(shared_dir) if shared_dir is not None else None
        return cls.for_process(path if path is not None and path.exists() else None)

    @staticmethod
    def create(path: Path) -> Path:
        """An empty board file, made by the supervisor before it starts the workers."""
        path.write_bytes(bytes(SLOTS * _ROW_BYTES))
        return path

    def _claim(self) -> int:
        for slot in range(SLOTS):
            with contextlib.suppress(OSError):
                fcntl.lockf(
                    self._file, fcntl.LOCK_EX | fcntl.LOCK_NB, _ROW_BYTES, slot * _ROW_BYTES
                )
                return slot
        raise RuntimeError(f"more than {SLOTS} workers on one board")

    def publish_connections(self, connections: int) -> None:
        self._rows[self.slot, _CONNECTIONS] = connections

    def fewest_connections_elsewhere(self) -> int | None:
        """The fewest open connections another live worker holds; None when there is none."""
        others = self._others()
        claimed = others[others[:, _PID] != 0]
        for row in claimed[np.argsort(claimed[:, _CONNECTIONS])]:
            if alive(int(row[_PID])):
                return int(row[_CONNECTIONS])
        return None

    @contextlib.contextmanager
    def running(self) -> Iterator[bool]:
        """Count one run in flight while inside; yields whether it started alone: no other
        run in flight in this process or in any other live worker."""
        with self._runs:
            others = self._others()
            busy = others[others[:, _RUNS] > 0, _PID]
            alone = self._rows[self.slot, _RUNS] == 0 and not any(alive(int(p)) for p in busy)
            self._rows[self.slot, _RUNS] += 1
        try:
            yield bool(alone)
        finally:
            with self._runs:
                self._rows[self.slot, _RUNS] -= 1

    def retire(self) -> None:
        """This worker takes no more connections: nobody should leave one to it."""
        self.publish_connections(RETIRED)

    def _others(self) -> np.ndarray:
        return np.delete(self._rows, self.slot, axis=0)
