"""The application factory: settings in, a FastAPI app that loads the model store out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI

from serving import __version__
from serving.core.metrics import Metrics
from serving.core.repository import ModelRepository
from serving.http import (
    caption,
    classify,
    collections,
    detect,
    faces,
    health,
    models,
    segment,
    stores,
    v2,
    vqa,
)
from serving.http.observe import RequestMetrics
from serving.http.responses import ORJSONResponse, install_error_handlers
from serving.settings import Settings
from serving.tasks import PIPELINES
from serving.vectors.catalog import Catalog
from serving.vectors.registry import StoreRegistry

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode")
        repo = ModelRepository(settings.model_store, settings, metrics, pool, PIPELINES)
        app.state.repository = repo
        app.state.loaded = asyncio.Event()
        app.state.draining = False
        # Opening every store cleans temp files of crashed writers and logs corrupt ones.
        await asyncio.to_thread(app.state.stores.open_all)

        async def load() -> None:
            await repo.load_all(settings.load_models)
            app.state.loaded.set()

        # Load in the background: the port opens at once and /readyz reports progress.
        loading = asyncio.create_task(load())
        try:
            yield
        finally:
            app.state.draining = True
            loading.cancel()
            await repo.close()
            pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="Fovea",
        version=__version__,
        description="Batched ONNX Runtime inference for vision models.",
        default_response_class=ORJSONResponse,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.collections = Catalog(settings.collections_dir)
    app.state.embedders = {}  # one ImageEmbedder per loaded model version, built on first use
    app.state.stores = StoreRegistry(
        {"faces": settings.face_gallery_dir, "collections": settings.collections_dir}
    )
    install_error_handlers(app)
    routers = (classify, detect, segment, caption, vqa, faces, collections, stores, models, health)
    for module in (*routers, v2):
        app.include_router(module.router)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app
