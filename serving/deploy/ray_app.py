"""Fovea on Ray Serve: every replica is the whole Fovea app (its own models and batchers) behind
Serve's HTTP proxy, plus a one-replica ``RepositorySync`` deployment holding the change log.

Why whole-app replicas rather than one deployment per model behind a light ingress: a Fovea
request spends its CPU in decoding and preprocessing as much as in inference, and a task such as
faces chains several models; splitting them would send decoded tensors between processes (a
224x224x3 float image is 600 kB) and add a hop per model, while whole-app replicas need one hop
(proxy -> replica) and keep the batchers' queues local. Scale a heavy model separately by
deploying a second application with ``load_models`` set to it.

Entry points: ``build_app`` is the Serve application builder named by ``serving/deploy/ray.yaml``
(``serve run serving/deploy/ray.yaml`` or ``fovea deploy ray --config ...``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle
from starlette.types import ASGIApp

from serving.app import create_app
from serving.deploy.middleware import BroadcastRepositoryChanges, ReplicaHeader, asgi_get
from serving.deploy.ray_deploy import PATH_SETTINGS
from serving.deploy.sync import Action, Change, ChangeLog, Follower
from serving.settings import Settings

log = logging.getLogger(__name__)


class FoveaArgs(BaseModel):
    """The ``args:`` of a Serve config that runs ``build_app``."""

    settings: dict[str, Any] = Field(
        default_factory=dict, description="Fovea settings (as FOVEA_* names, lower case)"
    )
    sync_timeout_s: float = Field(
        default=60.0, gt=0, description="how long load/unload waits for the other replicas"
    )


class _HandleLog:
    """The change log seen through a Serve handle (the ``LogClient`` a Follower needs)."""

    def __init__(self, handle: DeploymentHandle) -> None:
        self.handle = handle

    async def sync(
        self, replica: str, epoch: str, applied: int, states: dict[int, str], wait_s: float
    ) -> tuple[str, list[Change]]:
        return await self.handle.sync.remote(replica, epoch, applied, states, wait_s)

    async def leave(self, replica: str) -> None:
        await self.handle.leave.remote(replica)


@serve.deployment(
    name="RepositorySync",
    num_replicas=1,
    max_ongoing_requests=1000,
    ray_actor_options={"num_cpus": 0},
)
class RepositorySync(ChangeLog):
    """The change log as a Serve deployment (state lives in memory; see ``ChangeLog.epoch``)."""


@serve.deployment(
    name="Fovea",
    max_ongoing_requests=32,
    health_check_period_s=5,
    health_check_timeout_s=10,
    graceful_shutdown_wait_loop_s=1,
    graceful_shutdown_timeout_s=30,
)
@serve.ingress()
class FoveaReplica:
    """One replica: the Fovea app, ready only once its models loaded and the log is replayed."""

    def __init__(
        self, settings: dict[str, Any], repository_sync: DeploymentHandle, sync_timeout_s: float
    ) -> None:
        self.settings = Settings(**settings)
        self.replica = serve.get_replica_context().replica_id.unique_id
        self.log = _HandleLog(repository_sync)
        self.sync_timeout_s = sync_timeout_s
        self.fovea: FastAPI | None = None

    def __serve_build_asgi_app__(self) -> ASGIApp:
        app = create_app(self.settings)
        app.router.lifespan_context = self._lifespan(app.router.lifespan_context)
        app.add_middleware(BroadcastRepositoryChanges, publish=self._publish)
        app.add_middleware(ReplicaHeader, replica=self.replica)
        self.fovea = app
        return app

    async def check_health(self) -> None:
        """Serve's periodic health check asks Fovea's own readiness endpoint, in process."""
        assert self.fovea is not None
        status, body = await asgi_get(self.fovea, "/readyz")
        if status != 200:
            raise RuntimeError(f"Fovea replica {self.replica} not ready: {body[:500]!r}")

    def _lifespan(self, inner: Any) -> Any:
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
            async with inner(app) as state:
                # Serve routes to a replica once its startup returns: not before the models load.
                await app.state.loaded.wait()
                follower = Follower(self.replica, self.log, app.state.repository)
                await follower.step(wait_s=0)  # replay earlier loads/unloads before serving
                task = asyncio.create_task(follower.run(), name="fovea-repository-sync")
                log.info("Fovea replica %s ready (settings %s)", self.replica, self.settings)
                try:
                    yield state
                finally:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    with contextlib.suppress(Exception):
                        await self.log.leave(self.replica)

        return lifespan

    async def _publish(self, action: Action, model: str) -> dict[str, str]:
        assert self.fovea is not None
        state = self.fovea.state.repository.entry(model).state.value
        handle = self.log.handle
        generation = await handle.publish.remote(action, model, self.replica, state)
        return await handle.wait_applied.remote(generation, self.sync_timeout_s)


def build_app(args: dict[str, Any]) -> Application:
    """The Serve application builder: validate the args here, where a mistake is cheap."""
    parsed = FoveaArgs.model_validate(args)
    settings = Settings(**parsed.settings)
    for name in PATH_SETTINGS:
        if not getattr(settings, name).is_absolute():
            raise ValueError(
                f"settings.{name} must be an absolute path that every Ray node sees "
                f"(got {getattr(settings, name)})"
            )
    return FoveaReplica.bind(parsed.settings, RepositorySync.bind(), parsed.sync_timeout_s)
