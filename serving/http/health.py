"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from serving.http.responses import ORJSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process serves HTTP")
async def healthz() -> ORJSONResponse:
    return ORJSONResponse({"status": "ok"})


@router.get("/readyz", summary="Readiness: every model finished loading (ready or failed)")
async def readyz(request: Request) -> ORJSONResponse:
    state = request.app.state
    ready = state.loaded.is_set() and not state.draining
    models = {e.name: e.state.value for e in state.repository.entries()}
    # A store in its error state fails only the endpoints that use it (503 with the reason);
    # it is listed here so an operator sees it, without taking the other tasks out of service.
    stores = {k: h.reason for k, h in (await asyncio.to_thread(state.stores.health)).items()}
    unavailable = {k: reason for k, reason in stores.items() if reason is not None}
    return ORJSONResponse(
        {"ready": ready, "models": models, "unavailable_stores": unavailable},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
