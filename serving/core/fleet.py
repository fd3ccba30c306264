"""Several worker processes, one server: admin operations reach every worker.

With ``fovea serve --workers N`` each worker is a full app (its own models, batchers and event
loop; no GIL shared between them). What one worker is told must reach the others: a load or
unload is applied locally, appended to a control log in the server's shared folder, and
replayed by every other worker, which polls the log and acknowledges what it applied. The
admin call answers once every worker has acknowledged (or the wait times out, which it
reports). A worker that starts late (a restart) replays the whole log after loading, so it
ends in the same state as the others.

In one process (the default, and the tests' ``LiveServer``) there is no log: operations apply
locally only.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from serving.core.processes import alive

log = logging.getLogger(__name__)

Apply = Callable[[str, str], Awaitable[object]]  # (op, model name) -> result
CONTROL_LOG = "control.jsonl"
ACKS = "acks"


class ControlLog:
    """An append-only JSON-lines log of admin operations, shared by the workers."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / CONTROL_LOG
        self.acks = folder / ACKS
        self.acks.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)

    def append(self, op: str, model: str, origin: int) -> int:
        """Append one operation; returns its sequence number (its line number, from 1)."""
        with self.path.open("a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.seek(0)
                seq = sum(1 for _ in f) + 1
                f.write(json.dumps({"seq": seq, "op": op, "model": model, "origin": origin}) + "\n")
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return seq

    def size(self) -> int:
        return self.path.stat().st_size

    def read_after(self, seq: int) -> list[dict]:
        with self.path.open(encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_SH)
            try:
                lines = f.read().splitlines()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return [json.loads(line) for line in lines[seq:] if line.strip()]

    def ack(self, worker: int, seq: int) -> None:
        tmp = self.acks / f".{worker}.tmp"
        tmp.write_text(str(seq))
        tmp.replace(self.acks / str(worker))

    def acked(self, exclude: int) -> list[int]:
        """The last sequence number each other live worker has applied."""
        seqs = []
        for path in self.acks.iterdir():
            if path.name.startswith(".") or path.name == str(exclude):
                continue
            if not alive(int(path.name)):
                continue
            with contextlib.suppress(OSError, ValueError):
                seqs.append(int(path.read_text()))
        return seqs


class Fleet:
    """Applies admin operations here and, with a control log, in every other worker."""

    def __init__(
        self,
        apply: Apply,
        control: ControlLog | None,
        *,
        workers: int = 1,
        poll_s: float = 0.2,
        ack_timeout_s: float = 120.0,
    ) -> None:
        self._apply = apply
        self._control = control
        self._workers = workers
        self._poll_s = poll_s
        self._ack_timeout_s = ack_timeout_s
        self._pid = os.getpid()
        self._applied = 0
        self._seen_size = -1  # log size at the last read: polling reads nothing when unchanged
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Replay what the others were told before this worker started, then follow the log."""
        if self._control is None:
            return
        await self._catch_up(replay_own=True)
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self, op: str, model: str) -> tuple[object, bool]:
        """Apply ``op`` here and everywhere; returns (the local result, all workers acked)."""
        result = await self._apply(op, model)
        if self._control is None:
            return result, True
        seq = self._control.append(op, model, self._pid)
        end = time.monotonic() + self._ack_timeout_s
        while time.monotonic() < end:
            acked = self._control.acked(exclude=self._pid)
            if len(acked) >= self._workers - 1 and all(s >= seq for s in acked):
                return result, True
            await asyncio.sleep(self._poll_s / 2)
        log.warning("%s %s: not every worker acknowledged within %.0f s", op, model,
                    self._ack_timeout_s)
        return result, False

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self._catch_up(replay_own=False)
            except Exception:  # a bad line must not stop this worker following the others
                log.exception("control log")

    async def _catch_up(self, *, replay_own: bool) -> None:
        assert self._control is not None
        size = self._control.size()
        if size == self._seen_size:
            return
        self._seen_size = size
        for entry in self._control.read_after(self._applied):
            if replay_own or entry["origin"] != self._pid:
                try:
                    await self._apply(entry["op"], entry["model"])
                except Exception as exc:  # e.g. the model folder was removed since
                    log.warning("control %s %s: %s", entry["op"], entry["model"], exc)
            self._applied = entry["seq"]
        self._control.ack(self._pid, self._applied)
