"""``/v1/collections``: image collections searched by similarity of their embeddings.

A collection is bound to a model that declares an embedding output (``/v1/embed``'s features);
images are embedded through that model's batcher, stored with an id and optional JSON metadata
in a crash-safe, multi-process vector store, and searched exactly or with an HNSW graph
(:mod:`serving.vectors`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from serving.core.deadline import Deadline
from serving.core.repository import ModelVersion
from serving.errors import BadRequest, NotFound
from serving.http.docs import IMAGE_REQUEST_BODY
from serving.http.inputs import json_object, parse_options, read_body, read_image_request
from serving.http.responses import ORJSONResponse
from serving.tasks.embed import ImageEmbedder
from serving.vectors.catalog import Catalog, Manifest
from serving.vectors.collection import Hit, VectorCollection
from serving.vectors.names import normalise_name

router = APIRouter(tags=["collections"])
MAX_METADATA_BYTES = 4096


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    timeout_ms: float | None = Field(default=None, gt=0, le=600_000)


class CreateOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    name: str
    model: str | None = Field(default=None, description="a model with an embedding output")
    version: int | None = Field(default=None, ge=1)


class AddOptions(_Options):
    ids: list[str] = Field(description="one id per image, in order")
    metadata: list[dict[str, Any] | None] | None = Field(default=None, description="per image")
    replace: bool = Field(default=False, description="replace items whose id exists (else 409)")

    @field_validator("ids", "metadata", mode="before")
    @classmethod
    def _from_form(cls, value: Any) -> Any:
        """Multipart sends one field as a string: a JSON list, or a single id."""
        if isinstance(value, str):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                return [value]
        return value if isinstance(value, list) else [value]


class SearchOptions(_Options):
    top_k: int = Field(default=10, ge=1, le=1000)


def _catalog(request: Request) -> Catalog:
    return request.app.state.collections


def _embedder(request: Request, manifest: Manifest) -> ImageEmbedder:
    """The embedder the model's pipeline built when it loaded (reloads bring a new one)."""
    version: ModelVersion = request.app.state.repository.get(manifest.model)
    embedder: ImageEmbedder | None = getattr(version.pipeline, "embedder", None)
    if embedder is None:
        raise BadRequest(
            f"model {manifest.model!r} declares no image embedding output", code="not_an_embedder"
        )
    if embedder.dimension != manifest.dim:
        raise BadRequest(
            f"model {manifest.model!r} now embeds in {embedder.dimension} dimensions; the "
            f"collection holds {manifest.dim}",
            code="embedding_mismatch",
        )
    return embedder


def _deadline(request: Request, opts: _Options) -> Deadline:
    return Deadline.after_ms(opts.timeout_ms or request.app.state.settings.default_timeout_ms)


def _hits(hits: list[Hit]) -> list[dict[str, Any]]:
    return [{"id": h.id, "score": round(h.score, 5), "metadata": h.metadata} for h in hits]


def _describe(manifest: Manifest, collection: VectorCollection) -> dict[str, Any]:
    health = collection.store.health()
    return {
        "name": manifest.name,
        "model": manifest.model,
        "dim": manifest.dim,
        "items": health.items,
        "generation": health.generation,
        "ready": health.ready,
        "reason": health.reason,
    }


@router.post("/v1/collections", status_code=201, summary="Create a collection bound to a model")
async def create(request: Request) -> ORJSONResponse:
    doc = json_object(await read_body(request, 64 * 1024))
    opts = parse_options(CreateOptions, doc)
    repo = request.app.state.repository
    if opts.model:
        version = repo.get(opts.model, opts.version)
    else:
        ready = [e for e in repo.entries() if e.config and e.config.embedding and e.versions]
        if not ready:
            raise NotFound("no ready model declares an embedding output", code="model_not_found")
        version = repo.get(ready[0].name, opts.version)
    embedder: ImageEmbedder | None = getattr(version.pipeline, "embedder", None)
    if embedder is None:
        raise BadRequest(
            f"model {version.name!r} declares no image embedding output", code="not_an_embedder"
        )
    catalog = _catalog(request)
    manifest = await asyncio.to_thread(catalog.create, opts.name, version.name, embedder.dimension)
    _, collection = await asyncio.to_thread(catalog.get, manifest.name)
    return ORJSONResponse(_describe(manifest, collection), status_code=201)


@router.get("/v1/collections", summary="All collections with their model and size")
async def list_collections(request: Request) -> ORJSONResponse:
    catalog = _catalog(request)

    def describe_all() -> list[dict[str, Any]]:
        out = []
        for name in catalog.names():
            try:
                out.append(_describe(*catalog.get(name)))
            except NotFound:  # deleted meanwhile
                continue
        return out

    return ORJSONResponse({"collections": await asyncio.to_thread(describe_all)})


@router.get("/v1/collections/{name}", summary="One collection: model, size, state")
async def get_collection(request: Request, name: str) -> ORJSONResponse:
    found = await asyncio.to_thread(_catalog(request).get, name)
    return ORJSONResponse(await asyncio.to_thread(_describe, *found))


@router.delete("/v1/collections/{name}", summary="Delete a collection and all its items")
async def delete_collection(request: Request, name: str) -> ORJSONResponse:
    await asyncio.to_thread(_catalog(request).delete, name)
    return ORJSONResponse({"deleted": name})


@router.post(
    "/v1/collections/{name}/items",
    openapi_extra=IMAGE_REQUEST_BODY,
    summary="Add images with ids (and optional JSON metadata per image)",
)
async def add_items(request: Request, name: str) -> ORJSONResponse:
    manifest, collection = await asyncio.to_thread(_catalog(request).get, name)
    req = await read_image_request(request, request.app.state.settings)
    opts = parse_options(AddOptions, req.options)
    ids = [normalise_name(i, "id") for i in opts.ids]
    metadata = opts.metadata or [None] * len(ids)
    if not len(ids) == len(req.images) == len(metadata):
        raise BadRequest(
            f"{len(req.images)} images, {len(ids)} ids and {len(metadata)} metadata entries: "
            "give one id (and at most one metadata object) per image",
            code="ids_mismatch",
        )
    for i, meta in enumerate(metadata):
        if meta is not None and len(orjson.dumps(meta)) > MAX_METADATA_BYTES:
            raise BadRequest(
                f"metadata[{i}] exceeds {MAX_METADATA_BYTES} bytes", code="metadata_too_large"
            )
    vectors = await _embedder(request, manifest)(req.images, deadline=_deadline(request, opts))
    snap = await asyncio.to_thread(collection.add, ids, vectors, metadata, replace=opts.replace)
    return ORJSONResponse({"collection": name, "added": ids, "items": len(snap)})


@router.post(
    "/v1/collections/{name}/search",
    openapi_extra=IMAGE_REQUEST_BODY,
    summary="The top_k most similar items to each image",
)
async def search(request: Request, name: str) -> ORJSONResponse:
    manifest, collection = await asyncio.to_thread(_catalog(request).get, name)
    req = await read_image_request(request, request.app.state.settings)
    opts = parse_options(SearchOptions, req.options)
    vectors = await _embedder(request, manifest)(req.images, deadline=_deadline(request, opts))
    results = await asyncio.to_thread(collection.search, vectors, opts.top_k)
    return ORJSONResponse(
        {"collection": name, "results": [{"matches": _hits(hits)} for hits in results]}
    )


@router.get("/v1/collections/{name}/items/{item_id}", summary="One item's metadata")
async def get_item(request: Request, name: str, item_id: str) -> ORJSONResponse:
    _, collection = await asyncio.to_thread(_catalog(request).get, name)
    _, metadata = await asyncio.to_thread(collection.get, normalise_name(item_id, "id"))
    return ORJSONResponse({"id": item_id, "metadata": metadata})


@router.get(
    "/v1/collections/{name}/items/{item_id}/similar",
    summary="The top_k items most similar to a stored item (itself left out)",
)
async def similar(request: Request, name: str, item_id: str, top_k: int = 10) -> ORJSONResponse:
    opts = parse_options(SearchOptions, {"top_k": top_k})
    _, collection = await asyncio.to_thread(_catalog(request).get, name)
    key = normalise_name(item_id, "id")
    vector, _ = await asyncio.to_thread(collection.get, key)
    (hits,) = await asyncio.to_thread(collection.search, vector[None, :], opts.top_k, [key])
    return ORJSONResponse({"collection": name, "id": key, "matches": _hits(hits)})


@router.delete("/v1/collections/{name}/items/{item_id}", summary="Delete one item")
async def delete_item(request: Request, name: str, item_id: str) -> ORJSONResponse:
    _, collection = await asyncio.to_thread(_catalog(request).get, name)
    removed = await asyncio.to_thread(collection.remove, [normalise_name(item_id, "id")])
    return ORJSONResponse({"collection": name, "deleted": item_id, "removed": removed})
