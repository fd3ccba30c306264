"""A directory of crash-safe generations that several processes may read and write.

Every change writes the whole next generation as ``gen-<N>.fvec`` (temp file, fsync, rename,
fsync of the directory) while holding an exclusive ``flock`` on ``.lock``, so writers in any
number of processes (uvicorn workers, Ray replicas on one filesystem) are serialised and none
loses another's change: each re-reads the newest generation under the lock before applying its
own. Readers take no lock: they notice a newer file (one ``listdir`` + ``stat``) and reload.

The two newest generations are kept. A newest file that fails its checksum puts the store in an
error state (every read and write raises :class:`StoreUnavailable`, a 503 naming the file and
the reason) instead of silently serving older data; :meth:`VectorStore.restore` (an admin
action) sets the corrupt file aside and republishes the last good generation as a new one.
Temp files left by a writer that died are removed when a store is opened (under the lock, so a
live writer's temp file is never taken for a stale one).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving.errors import FoveaError
from serving.vectors.format import CorruptGeneration, Snapshot, decode, encode

log = logging.getLogger(__name__)

GENERATION = re.compile(r"^gen-(\d{12})\.fvec$")
TEMP_PREFIX = ".tmp-"
KEEP = 2


class StoreUnavailable(FoveaError):
    """The store's newest generation cannot be read: refuse rather than serve stale data."""

    status, code = 503, "store_unavailable"


class NothingToRestore(FoveaError):
    status, code = 409, "nothing_to_restore"


@dataclass(frozen=True)
class Health:
    ready: bool
    generation: int
    items: int
    reason: str | None = None
    last_good_generation: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "generation": self.generation,
            "items": self.items,
            "reason": self.reason,
            "last_good_generation": self.last_good_generation,
        }


Rows = tuple[tuple[str, ...], np.ndarray, tuple[dict[str, Any] | None, ...]]


class VectorStore:
    """``store.snapshot()`` for reads; ``store.update(fn)`` applies ``fn`` to the newest rows."""

    def __init__(
        self, directory: Path, dim: int | None = None, *, name: str | None = None, keep: int = KEEP
    ) -> None:
        self.directory = directory
        self.name = name or directory.name  # how errors and the admin API refer to it
        self.dim = dim
        self.keep = max(2, keep)
        directory.mkdir(parents=True, exist_ok=True)
        self._state = threading.Lock()  # guards _snap/_key/_error within this process
        self._writer = threading.Lock()  # one writer thread per process; flock for the rest
        self._snap: Snapshot | None = None
        self._key: tuple[int, ...] | None = None
        self._error: Health | None = None
        with self._exclusive():
            removed = [p.name for p in directory.iterdir() if p.name.startswith(TEMP_PREFIX)]
            for name in removed:
                (directory / name).unlink(missing_ok=True)
            if removed:
                log.warning(
                    "removed %d stale temp file(s) in %s: %s", len(removed), directory, removed
                )
        self.refresh()

    # -- reading ---------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The newest generation (reloaded if another process wrote one); 503 if corrupt."""
        with self._state:
            self._refresh_locked()
            if self._error is not None:
                raise StoreUnavailable(self._describe(self._error))
            assert self._snap is not None
            return self._snap

    def health(self) -> Health:
        with self._state:
            self._refresh_locked()
            if self._error is not None:
                return self._error
            assert self._snap is not None
            return Health(True, self._snap.generation, len(self._snap))

    def refresh(self) -> None:
        with self._state:
            self._refresh_locked()

    def generations(self) -> list[int]:
        return sorted(
            int(m.group(1)) for name in os.listdir(self.directory) if (m := GENERATION.match(name))
        )

    # -- writing ---------------------------------------------------------------------------

    def update(self, change: Callable[[Snapshot], Rows | None]) -> Snapshot:
        """Apply ``change`` to the newest generation and publish the result as the next one.

        ``change`` may raise (a 4xx for bad input) or return None (nothing to do): nothing is
        written then.
        """
        with self._writer, self._exclusive():
            current = self.snapshot()  # the newest on disk: we hold the lock, nobody else writes
            rows = change(current)
            if rows is None:
                return current
            ids, vectors, metadata = rows
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            vectors.setflags(write=False)
            new = Snapshot(current.generation + 1, current.dim, ids, vectors, metadata)
            self._publish(new)
            return new

    def restore(self) -> Health:
        """Set corrupt newest generations aside and republish the last good one (admin)."""
        with self._writer, self._exclusive():
            with self._state:
                self._refresh_locked()
                error = self._error
            if error is None:
                raise NothingToRestore(f"{self.name}: the newest generation is readable")
            good = self._last_good()
            if good is None:
                raise NothingToRestore(f"{self.name}: no readable generation is left to restore")
            stamp = time.strftime("%Y%m%dT%H%M%S")
            latest = self.generations()[-1]
            for gen in self.generations():
                if gen > good.generation:
                    path = self._path(gen)
                    path.rename(path.with_name(f"{path.name}.corrupt-{stamp}"))
                    log.warning("set aside corrupt generation %s", path)
            self._publish(Snapshot(latest + 1, good.dim, good.ids, good.vectors, good.metadata))
            return self.health()

    # -- internals -------------------------------------------------------------------------

    def _path(self, generation: int) -> Path:
        return self.directory / f"gen-{generation:012d}.fvec"

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _refresh_locked(self) -> None:
        for _ in range(5):  # a writer may prune the file between listdir and open: look again
            gens = self.generations()
            if not gens:
                self._set(Snapshot.empty(self.dim or 0), (0,))
                return
            path = self._path(gens[-1])
            try:
                st = path.stat()
                key = (gens[-1], st.st_ino, st.st_size, st.st_mtime_ns)
                if key == self._key:
                    return
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            self._key = key
            try:
                snap = decode(data)
                if snap.generation != gens[-1]:
                    raise CorruptGeneration(f"header says generation {snap.generation}")
                if self.dim is not None and snap.dim != self.dim:
                    raise CorruptGeneration(f"dimension {snap.dim}, expected {self.dim}")
            except CorruptGeneration as e:
                good = self._last_good(below=gens[-1])
                self._error = Health(
                    False,
                    gens[-1],
                    0,
                    f"{path.name} is unreadable: {e}",
                    good.generation if good else None,
                )
                log.error("vector store %s: %s", self.directory, self._error.reason)
                return
            self._set(snap, key)
            return
        raise StoreUnavailable(f"{self.name}: generations change too fast to read")

    def _set(self, snap: Snapshot, key: tuple[int, ...]) -> None:
        self._snap, self._key, self._error = snap, key, None
        if self.dim is None and len(snap):
            self.dim = snap.dim

    def _last_good(self, below: int | None = None) -> Snapshot | None:
        for gen in reversed(self.generations()):
            if below is not None and gen >= below:
                continue
            try:
                snap = decode(self._path(gen).read_bytes())
            except (CorruptGeneration, FileNotFoundError):
                continue
            if self.dim is None or snap.dim == self.dim:
                return snap
        return None

    def _publish(self, snap: Snapshot) -> None:
        """Write ``snap`` durably as its generation's file, then drop all but the newest few."""
        final = self._path(snap.generation)
        tmp = self.directory / f"{TEMP_PREFIX}{final.name}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(encode(snap))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself is durable before we acknowledge
        finally:
            os.close(dir_fd)
        st = final.stat()
        with self._state:
            self._set(snap, (snap.generation, st.st_ino, st.st_size, st.st_mtime_ns))
        for gen in self.generations()[: -self.keep]:
            self._path(gen).unlink(missing_ok=True)

    def _describe(self, error: Health) -> str:
        restore = (
            f"; last good generation {error.last_good_generation} is kept: an admin can "
            f"restore it with POST /v1/stores/{self.name}/restore"
            if error.last_good_generation is not None
            else "; no earlier readable generation is kept"
        )
        return f"vector store {self.name!r} is unavailable: {error.reason}{restore}"
