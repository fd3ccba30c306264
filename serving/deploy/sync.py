"""Keep every replica's model repository in step: a load or unload on one reaches all of them.

Serve routes each request to one replica and has no broadcast, so the replicas converge on a
shared change log instead (reconciliation, not messaging): the replica that served
``POST /v2/repository/models/{m}/load|unload`` publishes the change; every replica long-polls the
log, applies the newest change per model it has not applied yet, and acknowledges it with the
state that resulted. A replica that starts later replays the log before it reports ready, so it
comes up with the same models as the others. The log is plain Python (testable without Ray);
``ray_app`` runs it as a one-replica Serve deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from serving.core.repository import ModelRepository
from serving.errors import NotFound

log = logging.getLogger(__name__)
Action = Literal["load", "unload"]


@dataclass(frozen=True)
class Change:
    generation: int
    action: Action
    model: str
    origin: str  # the replica that applied it first (it does not apply it again)


@dataclass
class _Replica:
    applied: int = 0
    seen: float = 0.0
    states: dict[int, str] = field(default_factory=dict)  # generation -> resulting model state


class ChangeLog:
    """The ordered repository changes and which replica has applied which."""

    def __init__(self, stale_after_s: float = 15.0, clock: Callable[[], float] = time.monotonic):
        self.epoch = uuid.uuid4().hex  # a restarted log is a new epoch: replicas replay it
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._changes: list[Change] = []
        self._replicas: dict[str, _Replica] = {}
        self._news = asyncio.Condition()

    @property
    def generation(self) -> int:
        return self._changes[-1].generation if self._changes else 0

    async def publish(self, action: Action, model: str, origin: str, state: str) -> int:
        """Record a change ``origin`` has already applied (with ``state`` as its result)."""
        async with self._news:
            change = Change(self.generation + 1, action, model, origin)
            self._changes.append(change)
            self._ack(origin, change.generation, {change.generation: state})
            self._news.notify_all()
        return change.generation

    async def sync(
        self, replica: str, epoch: str, applied: int, states: dict[int, str], wait_s: float
    ) -> tuple[str, list[Change]]:
        """Acknowledge ``applied`` (with its states); return the changes still to apply, after
        waiting up to ``wait_s`` for one (long poll). A replica of another epoch replays all."""
        if epoch != self.epoch:
            applied = 0
        async with self._news:
            self._ack(replica, applied, states)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._news.wait_for(lambda: self.generation > applied), wait_s
                )
            if (r := self._replicas.get(replica)) is not None:  # it may have left meanwhile
                r.seen = self._clock()
        return self.epoch, latest_per_model(self._changes, applied)

    async def wait_applied(self, generation: int, timeout_s: float) -> dict[str, str]:
        """Each live replica's state for ``generation`` ('pending' if it has not applied it in
        time). Live = polled within ``stale_after_s``; a killed replica stops counting."""
        deadline = self._clock() + timeout_s
        async with self._news:
            while True:
                live = self._live()
                if all(r.applied >= generation for r in live.values()):
                    break
                left = deadline - self._clock()
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._news.wait(), min(left, 1.0))
        return {
            name: r.states.get(generation, "applied" if r.applied >= generation else "pending")
            for name, r in sorted(self._live().items())
        }

    async def leave(self, replica: str) -> None:
        async with self._news:
            self._replicas.pop(replica, None)
            self._news.notify_all()

    def _ack(self, replica: str, applied: int, states: dict[int, str]) -> None:
        r = self._replicas.setdefault(replica, _Replica())
        r.applied, r.seen = max(r.applied, applied), self._clock()
        r.states.update({int(g): s for g, s in states.items()})
        self._news.notify_all()

    def _live(self) -> dict[str, _Replica]:
        now = self._clock()
        return {k: r for k, r in self._replicas.items() if now - r.seen <= self.stale_after_s}


def latest_per_model(changes: list[Change], after: int) -> list[Change]:
    """Only the newest change of each model matters to a replica catching up."""
    newest: dict[str, Change] = {}
    for change in changes:
        if change.generation > after:
            newest[change.model] = change
    return sorted(newest.values(), key=lambda c: c.generation)


class LogClient(Protocol):
    """What a replica needs from the log (a Serve handle in production, the log itself in tests)."""

    def sync(
        self, replica: str, epoch: str, applied: int, states: dict[int, str], wait_s: float
    ) -> Awaitable[tuple[str, list[Change]]]: ...

    def leave(self, replica: str) -> Awaitable[None]: ...


class Follower:
    """One replica's side: apply the log's changes to the local repository, then acknowledge."""

    def __init__(self, replica: str, log_client: LogClient, repository: ModelRepository) -> None:
        self.replica = replica
        self.log = log_client
        self.repository = repository
        self.epoch = ""
        self.applied = 0
        self._states: dict[int, str] = {}

    async def step(self, wait_s: float) -> list[Change]:
        """One long poll; returns the changes applied."""
        epoch, changes = await self.log.sync(
            self.replica, self.epoch, self.applied, self._states, wait_s
        )
        if epoch != self.epoch:
            self.epoch, self.applied = epoch, 0
        self._states = {}
        done = []
        for change in changes:
            if change.origin != self.replica:
                self._states[change.generation] = await self._apply(change)
                done.append(change)
            self.applied = max(self.applied, change.generation)
        return done

    async def run(self, wait_s: float = 5.0, retry_s: float = 1.0) -> None:
        while True:
            try:
                await self.step(wait_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the log's replica restarting: try again, never die
                log.warning("repository sync failed (%s); retrying", exc)
                await asyncio.sleep(retry_s)

    async def _apply(self, change: Change) -> str:
        try:
            if change.action == "load":
                entry = await self.repository.load(change.model)
            else:
                entry = await self.repository.unload(change.model)
        except NotFound as exc:
            if change.action == "unload":  # never loaded here (a replica started later): done
                return "unloaded"
            log.error("replica %s: %s %s failed: %s", self.replica, *_what(change), exc)
            return f"failed: {exc}"
        except Exception as exc:  # e.g. the folder is missing on this node's store
            log.error("replica %s: %s %s failed: %s", self.replica, *_what(change), exc)
            return f"failed: {exc}"
        log.info("replica %s: %s %s -> %s", self.replica, *_what(change), entry.state.value)
        return entry.state.value


def _what(change: Change) -> tuple[str, str]:
    return change.action, change.model
