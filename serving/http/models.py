"""Model listing (``/v1/models``) and run-time load/unload (Triton's repository extension).

Load and unload need the ``admin`` scope; :mod:`serving.http.auth` enforces it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from serving.core.repository import ModelEntry, ModelRepository
from serving.http.responses import ORJSONResponse
from serving.http.schemas import ModelInfo, ModelList, RepositoryRow

router = APIRouter(tags=["models"])


def describe(entry: ModelEntry) -> dict[str, Any]:
    versions = {
        str(n): {"providers": v.model.providers, "state": "ready"}
        for n, v in entry.versions.items()
    }
    return {
        "name": entry.name,
        "task": entry.config.task if entry.config else None,
        "state": entry.state.value,
        "reason": entry.reason,
        "default_version": entry.default_version,
        "versions": versions,
        "config": entry.config.model_dump(mode="json") if entry.config else None,
    }


def _repo(request: Request) -> ModelRepository:
    return request.app.state.repository


@router.get(
    "/v1/models",
    summary="All models in the store with task, versions and state",
    response_model=ModelList,
)
async def list_models(request: Request) -> ORJSONResponse:
    return ORJSONResponse({"models": [describe(e) for e in _repo(request).entries()]})


@router.get(
    "/v1/models/{name}",
    summary="One model: state, versions, providers, config, card",
    response_model=ModelInfo,
)
async def get_model(name: str, request: Request) -> ORJSONResponse:
    return ORJSONResponse(describe(_repo(request).entry(name)))


@router.post(
    "/v2/repository/index",
    summary="Models in the store and their state",
    response_model=list[RepositoryRow],
)
async def repository_index(request: Request) -> ORJSONResponse:
    repo = _repo(request)
    known = {e.name: e for e in repo.entries()}
    rows = []
    for name in sorted(set(known) | set(repo.model_names())):
        entry = known.get(name)
        row: dict[str, Any] = {
            "name": name,
            "state": entry.state.value.upper() if entry else "UNAVAILABLE",
        }
        if entry and entry.reason:
            row["reason"] = entry.reason
        rows.append(row)
    return ORJSONResponse(rows)


@router.post(
    "/v2/repository/models/{name}/load",
    summary="Load or reload a model from disk",
    response_model=ModelInfo,
)
async def load_model(name: str, request: Request) -> ORJSONResponse:
    entry, everywhere = await request.app.state.fleet.run("load", name)
    status = 200 if entry.state.value == "ready" else 422
    return ORJSONResponse(describe(entry), status_code=status if everywhere else 503)


@router.post(
    "/v2/repository/models/{name}/unload",
    summary="Unload a model (drains its queue)",
    response_model=ModelInfo,
)
async def unload_model(name: str, request: Request) -> ORJSONResponse:
    entry, everywhere = await request.app.state.fleet.run("unload", name)
    return ORJSONResponse(describe(entry), status_code=200 if everywhere else 503)
