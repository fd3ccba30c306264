"""The application factory: settings in, a FastAPI app that loads the model store out."""

from __future__ import annotations

import asyncio
import gc
import logging
import logging.config
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import multiprocess
from starlette.middleware.cors import CORSMiddleware

from serving import __version__
from serving.core.fleet import ControlLog, Fleet
from serving.core.memory import IdleTrimmer
from serving.core.metrics import Metrics
from serving.core.repository import ModelRepository
from serving.core.threads import compute_thread_init
from serving.http import collections, health, models, stores, ui, v2
from serving.http.access import AccessLog
from serving.http.auth import ApiKeyAuth, load_keys
from serving.http.drain import CutOnDrain, Drain
from serving.http.leases import VersionLeases
from serving.http.observe import RequestMetrics
from serving.http.openapi import install_openapi
from serving.http.responses import ORJSONResponse, install_error_handlers
from serving.http.task_routes import task_router
from serving.http.timeouts import BodyDeadline
from serving.logs import logging_config
from serving.settings import Settings
from serving.tasks import PIPELINES, TASKS
from serving.vectors.catalog import Catalog
from serving.vectors.registry import StoreRegistry

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()
    keys = load_keys(settings)  # a bad key file stops the start, before the port opens
    drain = Drain(settings.graceful_shutdown_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        budget = settings.thread_budget()
        log.debug("thread budget: %s", budget)
        pool = ThreadPoolExecutor(
            budget.decode_threads,
            thread_name_prefix="decode",
            initializer=compute_thread_init,
            initargs=(settings.compute_nice,),
        )
        repo = ModelRepository(settings.model_store, settings, metrics, pool, PIPELINES)
        app.state.repository = repo
        app.state.loaded = asyncio.Event()

        async def apply(op: str, name: str) -> object:
            return await (repo.load(name) if op == "load" else repo.unload(name))

        control = ControlLog(settings.shared_dir) if settings.shared_dir else None
        fleet = Fleet(apply, control, workers=settings.workers)
        app.state.fleet = fleet
        # Opening every store cleans temp files of crashed writers and logs corrupt ones.
        await asyncio.to_thread(app.state.stores.open_all)

        async def load() -> None:
            await repo.load_all(settings.load_models)
            await fleet.start()  # replay admin operations the other workers already applied
            app.state.loaded.set()
            log_summary(repo, settings)
            # What loading built (modules, sessions, configs) lives as long as the process;
            # frozen, the collector's full passes stop walking it (they took ~10 % of the event
            # loop's CPU under load, py-spy).
            gc.freeze()
            trimmer = IdleTrimmer()
            while True:  # housekeeping, once a second
                if control is not None:  # other workers' scrapes read our sampled gauges
                    metrics.sample_gauges()
                trimmer.tick(busy=repo.rows_in_flight() > 0)
                await asyncio.sleep(1.0)

        # Load in the background: the port opens at once and /readyz reports progress.
        loading = asyncio.create_task(load())
        try:
            yield
        finally:
            drain.draining = True
            loading.cancel()
            await fleet.stop()
            await repo.close()
            pool.shutdown(wait=False, cancel_futures=True)
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                multiprocess.mark_process_dead(os.getpid())  # its gauges leave the live sums

    app = FastAPI(
        title="Fovea",
        version=__version__,
        description="Batched ONNX Runtime inference for vision models.",
        default_response_class=ORJSONResponse,
        lifespan=lifespan,
        docs_url=None,  # served by serving.http.ui from local files, not a CDN
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.drain = drain
    app.state.collections = Catalog(settings.collections_dir)
    app.state.stores = StoreRegistry(
        {"faces": settings.face_gallery_dir, "collections": settings.collections_dir}
    )
    install_error_handlers(app)
    app.include_router(task_router(TASKS))
    for module in (collections, stores, models, health, v2, ui):
        app.include_router(module.router)
    install_openapi(app)
    # Added innermost first: CORS sees every response (401s included) and answers preflights.
    app.add_middleware(VersionLeases)
    app.add_middleware(
        ApiKeyAuth,
        keys=keys,
        keys_configured=bool(settings.api_keys or settings.api_keys_file),
        metrics=metrics,
    )
    app.add_middleware(BodyDeadline, timeout_s=settings.body_timeout_s)
    app.add_middleware(CutOnDrain, drain=drain)
    app.add_middleware(RequestMetrics, metrics=metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=settings.cors_methods,
            allow_headers=settings.cors_headers,
            max_age=settings.cors_max_age_s,
        )
    # Outermost: every response (401s, CORS preflights, drain cuts) gets a request id and a line.
    app.add_middleware(AccessLog, enabled=settings.access_log)
    return app


def create_worker_app() -> FastAPI:
    """Entry point of each ``fovea serve --workers N`` process: settings from ``FOVEA_*``."""
    settings = Settings()
    logging.config.dictConfig(logging_config(settings.log_level, settings.log_format))
    return create_app(settings)


def log_summary(repo: ModelRepository, settings: Settings) -> None:
    """One line an operator reads at start: how many models serve, and where to look next."""
    entries = repo.entries()
    ready = [e.name for e in entries if e.state.value == "ready"]
    failed = [f"{e.name} ({e.reason})" for e in entries if e.state.value == "failed"]
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    base = f"http://{host}:{settings.port}"
    level = logging.WARNING if failed or not ready else logging.INFO
    log.log(
        level,
        "%d/%d models ready, demo page at %s/ and docs at %s/docs%s",
        len(ready),
        len(entries),
        base,
        base,
        f"; failed: {'; '.join(failed)}" if failed else "",
    )
