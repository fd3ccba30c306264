"""Liveness, readiness and Prometheus metrics (summed over workers when there are several)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from serving.http.responses import ORJSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process serves HTTP")
async def healthz() -> ORJSONResponse:
    return ORJSONResponse({"status": "ok"})


@router.get("/readyz", summary="Readiness: every model finished loading (ready or failed)")
async def readyz(request: Request) -> ORJSONResponse:
    state = request.app.state
    ready = state.loaded.is_set() and not state.drain.draining
    models = {e.name: e.state.value for e in state.repository.entries()}
    return ORJSONResponse({"ready": ready, "models": models}, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
