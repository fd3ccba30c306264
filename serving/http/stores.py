"""``/v1/stores``: the state of every vector store (face galleries, image collections) and restore.

A store whose newest generation is unreadable answers 503 with the reason on every endpoint that
uses it; here an operator sees which, and restores the last good generation (admin token).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from serving.http.models import _authorize
from serving.http.responses import ORJSONResponse
from serving.vectors.registry import StoreRegistry

router = APIRouter(tags=["stores"])


def _registry(request: Request) -> StoreRegistry:
    return request.app.state.stores


@router.get("/v1/stores", summary="Vector stores (face galleries, collections) and their state")
async def list_stores(request: Request) -> ORJSONResponse:
    health = await asyncio.to_thread(_registry(request).health)
    return ORJSONResponse({"stores": [{"store": k, **h.as_dict()} for k, h in health.items()]})


@router.get("/v1/stores/{kind}/{name}", summary="One vector store's state")
async def get_store(request: Request, kind: str, name: str) -> ORJSONResponse:
    store = _registry(request).store(kind, name)
    health = await asyncio.to_thread(store.health)
    return ORJSONResponse({"store": store.name, **health.as_dict()})


@router.post(
    "/v1/stores/{kind}/{name}/restore",
    summary="Set a corrupt newest generation aside and republish the last good one (admin)",
)
async def restore_store(request: Request, kind: str, name: str) -> ORJSONResponse:
    _authorize(request)
    store = _registry(request).store(kind, name)
    health = await asyncio.to_thread(store.restore)
    return ORJSONResponse({"store": store.name, **health.as_dict()})
