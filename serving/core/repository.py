"""The model repository: folders in the store become loaded, batched, observable model versions.

Layout (Triton-style): ``<store>/<name>/config.yaml`` plus ``<store>/<name>/<version>/model.onnx``
for integer versions. A model that fails to load is recorded with its reason; it never stops the
server or the other models. ``load`` is also a reload: new version folders are picked up and
unchanged versions keep running, so a version can be added without a restart.

Reloads are hitless: a changed version is loaded and warmed beside the old one, then swapped in;
requests that already resolved the old one (see :func:`request_leases`) finish on it, and its
batcher is closed only once none holds it any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from serving.core.admission import Admission
from serving.core.batching import BatchPolicy, DynamicBatcher
from serving.core.config import ModelConfig, load_config
from serving.core.decode_window import DecodeWindow
from serving.core.metrics import BatchRecorder, Metrics
from serving.core.runtime import ModelLoadError, OnnxModel, Tensors
from serving.core.threads import compute_thread_init
from serving.core.worker_board import WorkerBoard
from serving.errors import FoveaError, ModelUnavailable, NotFound
from serving.settings import Settings

log = logging.getLogger(__name__)
MODEL_FILE = "model.onnx"
DECODE_AHEAD_BATCHES = 3  # rows decoded and not yet answered, in batches of rows_per_run


class State(enum.StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    UNLOADED = "unloaded"


@dataclass(eq=False)
class ModelVersion:
    """One servable version: its session, its batcher and its task pipeline."""

    name: str
    version: int
    folder: Path
    config: ModelConfig
    model: OnnxModel
    batcher: DynamicBatcher[Tensors, Tensors]
    recorder: BatchRecorder
    file_stamp: tuple[int, int]
    admission: Admission
    decode_window: DecodeWindow
    pipeline: Any = None
    leases: int = 0  # requests that resolved this version and have not finished
    bound: list[ModelVersion] = field(default_factory=list)  # dependencies its pipeline uses

    async def infer(self, rows: Sequence[Tensors], *, timeout_s: float | None) -> list[Tensors]:
        return await self.batcher.submit(rows, timeout_s=timeout_s)


_LEASES: contextvars.ContextVar[list[ModelVersion] | None] = contextvars.ContextVar(
    "fovea_version_leases", default=None
)


@contextlib.contextmanager
def request_leases() -> Iterator[None]:
    """Scope of one request: every version it resolves stays open until the scope ends."""
    held: list[ModelVersion] = []
    token = _LEASES.set(held)
    try:
        yield
    finally:
        _LEASES.reset(token)
        for version in held:
            version.leases -= 1


def _lease(version: ModelVersion) -> ModelVersion:
    """Hold ``version`` and the dependencies bound to it for the current request."""
    held = _LEASES.get()
    if held is not None and version not in held:
        held.append(version)
        version.leases += 1
        for dependency in version.bound:
            _lease(dependency)
    return version


@dataclass(eq=False)
class ModelEntry:
    name: str
    folder: Path
    state: State = State.LOADING
    reason: str | None = None
    config: ModelConfig | None = None
    versions: dict[int, ModelVersion] = field(default_factory=dict)
    unbound: bool = False  # loaded, but failed because a model it depends on is not there

    @property
    def default_version(self) -> int | None:
        if self.config is not None and self.config.default_version is not None:
            return self.config.default_version
        return max(self.versions, default=None)


PipelineFactory = Callable[[ModelVersion, Settings, Executor], Any]


class ModelRepository:
    def __init__(
        self,
        store: Path,
        settings: Settings,
        metrics: Metrics,
        decode_pool: Executor,
        pipelines: dict[str, PipelineFactory],
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.decode_pool = decode_pool
        self._pipelines = pipelines
        self._entries: dict[str, ModelEntry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        budget = settings.thread_budget()
        self._intra_op_threads = budget.intra_op_threads
        self._cores = budget.cores  # what a lone run may use (runtime.lone_runs_use_all_cores)
        self._board = WorkerBoard.for_shared_dir(settings.shared_dir)

    # -- queries ---------------------------------------------------------------------------------
    def entries(self) -> list[ModelEntry]:
        return sorted(self._entries.values(), key=lambda e: e.name)

    def entry(self, name: str) -> ModelEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise NotFound(f"unknown model {name!r}", code="model_not_found") from None

    def get(self, name: str, version: int | str | None = None) -> ModelVersion:
        entry = self.entry(name)
        if entry.state is not State.READY:
            detail = f": {entry.reason}" if entry.reason else ""
            raise ModelUnavailable(f"model {name!r} is {entry.state.value}{detail}")
        wanted = entry.default_version if version in (None, "") else _parse_version(version)
        if wanted not in entry.versions:
            raise NotFound(
                f"model {name!r} has no version {version}; available: {sorted(entry.versions)}",
                code="version_not_found",
            )
        return _lease(entry.versions[wanted])

    def for_task(self, task: str, name: str | None, version: int | str | None) -> ModelVersion:
        """The named model (which must serve ``task``) or the task's default model."""
        if name:
            found = self.get(name, version)
            if found.config.task != task:
                raise NotFound(
                    f"model {name!r} serves {found.config.task!r}, not {task!r}",
                    code="model_not_found",
                )
            return found
        candidates = [e for e in self.entries() if e.config is not None and e.config.task == task]
        ready = [e for e in candidates if e.state is State.READY]
        if not ready:
            raise (ModelUnavailable if candidates else NotFound)(
                f"no ready model for task {task!r}"
            )
        chosen = next((e for e in ready if e.config and e.config.default_for_task), ready[0])
        return self.get(chosen.name, version)

    def refuse_if_full(
        self, task: str, name: str | None, version: str | None, *, exact: bool
    ) -> None:
        """The door check, before a request's body is read: :class:`Overloaded` if every
        version the request could reach is at its admission bound.

        ``exact``: ``name``/``version`` decide the model (a raw image body carries no options);
        otherwise the body may still name any version of any model serving ``task``. Unknown
        or unready models pass here: the check after parsing reports them.
        """
        if exact:
            try:
                admissions = [self.for_task(task, name, version).admission]
            except FoveaError:
                return
        else:
            admissions = [
                v.admission
                for e in self.entries()
                if e.state is State.READY and e.config is not None and e.config.task == task
                for v in e.versions.values()
            ]
        if admissions and all(a.full for a in admissions):
            admissions[0].refuse()

    def rows_in_flight(self) -> int:
        """Rows admitted or queued and not yet answered, over every loaded version."""
        return sum(
            v.admission.in_flight + v.batcher.queue_depth + v.batcher.in_flight
            for e in self.entries()
            for v in e.versions.values()
        )

    def all_ready(self) -> bool:
        return all(e.state in (State.READY, State.FAILED, State.UNLOADED) for e in self.entries())

    def model_names(self) -> list[str]:
        if not self.store.is_dir():
            return []
        return sorted(p.name for p in self.store.iterdir() if (p / "config.yaml").is_file())

    # -- lifecycle -------------------------------------------------------------------------------
    async def load_all(self, names: Sequence[str] | None = None) -> None:
        targets = list(names) if names is not None else self.model_names()
        for name in targets:  # register first so /v1/models shows them as loading
            self._entries.setdefault(name, ModelEntry(name, self.store / name))
        await asyncio.gather(*(self.load(name, bind=False) for name in targets))
        self._bind_all()

    async def load(self, name: str, *, bind: bool = True) -> ModelEntry:
        """Load or reload ``name`` from disk; failures are recorded on the entry, not raised.

        ``bind`` then (re)binds every model's dependencies, so models that depend on ``name``
        see its new versions, and fail with the reason if it is gone.
        """
        folder = self.store / name
        if not (folder / "config.yaml").is_file():
            raise NotFound(f"no model folder {name!r} with a config.yaml in the store")
        async with self._locks.setdefault(name, asyncio.Lock()):
            old = self._entries.get(name)
            entry = ModelEntry(name, folder)
            if old is None or old.state is not State.READY:
                self._entries[name] = entry
            try:
                entry.config = self._sized(load_config(folder / "config.yaml"))
                entry.versions = await self._load_versions(entry, old)
                if entry.default_version not in entry.versions:
                    raise ModelLoadError(
                        f"default_version {entry.default_version} has no loaded version folder"
                    )
                entry.state = State.READY
            except Exception as exc:  # any broken model is reported, never fatal to the server
                entry.state = State.FAILED
                entry.reason = self._relative(str(exc) or type(exc).__name__)
                log.error("model %s failed to load: %s", name, entry.reason)
            self._entries[name] = entry
            if bind:
                self._bind_all()
            retired = (
                []
                if old is None
                else [v for k, v in old.versions.items() if entry.versions.get(k) is not v]
            )
            await self._close(retired)
            if entry.state is State.READY:
                log.info(
                    "model %s ready: versions %s on %s",
                    name,
                    sorted(entry.versions),
                    entry.versions[entry.default_version].model.providers[0],
                )
            return entry

    async def unload(self, name: str) -> ModelEntry:
        entry = self.entry(name)
        async with self._locks.setdefault(name, asyncio.Lock()):
            versions, entry.versions = list(entry.versions.values()), {}
            entry.state, entry.reason = State.UNLOADED, None
            self._bind_all()
            await self._close(versions)
        return entry

    async def close(self) -> None:
        for entry in self.entries():
            await self._close(list(entry.versions.values()))

    # -- internals -------------------------------------------------------------------------------
    def _relative(self, message: str) -> str:
        """``message`` with the store's location removed: clients never see server paths."""
        prefixes = {str(self.store.resolve()), str(self.store.absolute()), str(self.store)}
        for prefix in sorted(prefixes, key=len, reverse=True):
            message = message.replace(prefix + os.sep, "").replace(prefix, ".")
        return message

    def _bind_all(self) -> None:
        """Resolve every loaded model's dependencies (other models, by name) and bind them.

        A model whose dependency is missing, not ready or does not fit is FAILED with the reason;
        it recovers on the next bind once the dependency is back. Models loaded but failed only
        for a dependency keep their versions, so that recovery needs no reload.
        """
        pending = [
            e for e in self.entries() if e.versions and (e.state is State.READY or e.unbound)
        ]
        for entry in pending:  # a clean slate: a model is ready unless a dependency says no
            entry.state, entry.reason, entry.unbound = State.READY, None, False
        changed = True
        while changed:  # a failure can cascade (embedder -> detector -> stage): repeat
            changed = False
            for entry in pending:
                if entry.state is State.READY and (reason := self._bind(entry)) is not None:
                    entry.state, entry.reason, entry.unbound = State.FAILED, reason, True
                    log.error("model %s failed to bind: %s", entry.name, reason)
                    changed = True

    def _bind(self, entry: ModelEntry) -> str | None:
        for version in entry.versions.values():
            pipeline = version.pipeline
            if pipeline is None:
                continue
            resolved = {}
            for role, name in pipeline.dependencies().items():
                dep = self._entries.get(name)
                if dep is None or dep.state is not State.READY or dep.default_version is None:
                    state = "missing" if dep is None else dep.state.value
                    return f"depends on model {name!r} ({role}), which is {state}"
                resolved[role] = dep.versions[dep.default_version]
            try:
                pipeline.bind(resolved)
            except ValueError as exc:
                return str(exc)
            version.bound = list(resolved.values())
        return None

    def _sized(self, config: ModelConfig) -> ModelConfig:
        """The config with the server-wide thread override, if one is set."""
        threads = self.settings.intra_op_threads
        if threads is None:
            return config
        runtime = config.runtime.model_copy(update={"intra_op_threads": threads})
        return config.model_copy(update={"runtime": runtime})

    async def _load_versions(
        self, entry: ModelEntry, old: ModelEntry | None
    ) -> dict[int, ModelVersion]:
        assert entry.config is not None
        folders = sorted(
            (int(p.name), p) for p in entry.folder.iterdir() if p.is_dir() and p.name.isdigit()
        )
        if not folders:
            raise ModelLoadError(f"{entry.folder} has no numbered version folder")
        versions: dict[int, ModelVersion] = {}
        for number, folder in folders:
            path = folder / MODEL_FILE
            stamp = _stamp(path)
            previous = old.versions.get(number) if old else None
            if previous and previous.config == entry.config and previous.file_stamp == stamp:
                versions[number] = previous
                continue
            versions[number] = await self._load_version(entry.config, number, path, stamp)
        return versions

    async def _load_version(
        self, config: ModelConfig, number: int, path: Path, stamp: tuple[int, int]
    ) -> ModelVersion:
        def build() -> OnnxModel:
            model = OnnxModel(
                path,
                config,
                default_threads=self._intra_op_threads,
                board=self._board,
                lone_threads=self._cores,
            )
            model.warmup()
            return model

        nice = partial(compute_thread_init, self.settings.compute_nice)
        # Built on a niced thread: the session's own intra-op threads inherit its priority.
        builder = ThreadPoolExecutor(1, thread_name_prefix="load", initializer=nice)
        try:
            model = await asyncio.get_running_loop().run_in_executor(builder, build)
        finally:
            builder.shutdown(wait=False)
        recorder = BatchRecorder(self.metrics, config.name, str(number))
        b = config.batching
        policy = BatchPolicy(
            max_batch_size=model.rows_per_run,
            max_queue_delay_ms=b.max_queue_delay_ms,
            preferred_batch_sizes=tuple(b.preferred_batch_sizes),
            max_queue_size=b.max_queue_size,
            workers=config.runtime.instances,
        )
        batcher: DynamicBatcher[Tensors, Tensors] = DynamicBatcher(
            model.run_rows,
            policy,
            name=f"{config.name}/{number}",
            observer=recorder,
            thread_init=nice,
        )
        rejected = self.metrics.rejected.labels(config.name, str(number))
        admission = Admission(
            b.admission_limit,
            max_wait_s=b.max_wait_ms / 1000 if b.max_wait_ms else None,
            name=f"{config.name}/{number}",
            on_reject=rejected.inc,
        )
        version = ModelVersion(
            config.name,
            number,
            path.parent,
            config,
            model,
            batcher,
            recorder,
            stamp,
            admission,
            DecodeWindow(DECODE_AHEAD_BATCHES * model.rows_per_run),
        )
        factory = self._pipelines.get(config.task)
        try:
            version.pipeline = (
                factory(version, self.settings, self.decode_pool) if factory else None
            )
        except Exception:
            await batcher.close(drain_timeout_s=0)
            raise
        labels = (config.name, str(number))
        self.metrics.track(self.metrics.queue_depth, labels, lambda: batcher.queue_depth)
        self.metrics.track(self.metrics.in_flight, labels, lambda: admission.in_flight)
        self.metrics.track(self.metrics.headroom, labels, lambda: admission.headroom)
        return version

    async def _close(self, versions: list[ModelVersion]) -> None:
        """Close each version once no request holds it (bounded by the drain window)."""
        end = time.perf_counter() + self.settings.graceful_shutdown_s
        while any(v.leases > 0 for v in versions) and time.perf_counter() < end:
            await asyncio.sleep(0.005)
        for v in versions:
            await v.batcher.close(drain_timeout_s=max(0.0, end - time.perf_counter()))
            current = self._entries.get(v.name)
            if current is not None and current.versions.get(v.version, v) is not v:
                continue  # its replacement now owns the version's gauges
            labels = (v.name, str(v.version))
            self.metrics.untrack(self.metrics.queue_depth, labels)
            self.metrics.untrack(self.metrics.in_flight, labels)
            self.metrics.untrack(self.metrics.headroom, labels)


def _parse_version(version: int | str) -> int:
    try:
        return int(version)
    except (TypeError, ValueError):
        raise NotFound(
            f"version must be an integer, got {version!r}", code="version_not_found"
        ) from None


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError as exc:
        raise ModelLoadError(f"{path} does not exist") from exc
    return st.st_mtime_ns, st.st_size
