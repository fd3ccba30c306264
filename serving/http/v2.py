"""Open Inference Protocol v2 (KServe v2 / Triton HTTP) for every model in the store."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import Response

from serving import __version__
from serving.core.deadline import Deadline
from serving.core.repository import ModelRepository, ModelVersion, State
from serving.core.runtime import RejectedInput
from serving.errors import BadRequest, ModelUnavailable
from serving.http.inputs import read_body
from serving.http.responses import ORJSONResponse
from serving.http.schemas import (
    ServerMetadata,
    V2InferResponse,
    V2ModelConfig,
    V2ModelMetadata,
    V2ModelStats,
)
from serving.http.v2_codec import HEADER_LENGTH, encode_infer_response, parse_infer_request

router = APIRouter(prefix="/v2", tags=["v2 (Open Inference Protocol)"])
EXTENSIONS = ["binary_tensor_data", "model_repository", "statistics", "model_configuration"]


def _repo(request: Request) -> ModelRepository:
    return request.app.state.repository


@router.get("", summary="Server metadata", response_model=ServerMetadata)
async def server_metadata() -> ORJSONResponse:
    return ORJSONResponse({"name": "fovea", "version": __version__, "extensions": EXTENSIONS})


@router.get("/health/live", summary="Server liveness")
async def live() -> ORJSONResponse:
    return ORJSONResponse({"live": True})


@router.get("/health/ready", summary="Server readiness")
async def ready(request: Request) -> ORJSONResponse:
    ok = request.app.state.loaded.is_set() and not request.app.state.drain.draining
    return ORJSONResponse({"ready": ok}, status_code=200 if ok else 503)


@router.get(
    "/models/stats",
    summary="Statistics of every loaded model version",
    response_model=V2ModelStats,
)
async def all_stats(request: Request) -> ORJSONResponse:
    stats = [
        v.recorder.stats.as_dict(v.name, str(v.version))
        for e in _repo(request).entries()
        for v in e.versions.values()
    ]
    return ORJSONResponse({"model_stats": stats})


@router.get("/models/{name}", summary="Model metadata", response_model=V2ModelMetadata)
@router.get(
    "/models/{name}/versions/{version}",
    summary="Model version metadata",
    response_model=V2ModelMetadata,
)
async def model_metadata(name: str, request: Request, version: str | None = None) -> ORJSONResponse:
    entry = _repo(request).entry(name)
    if version is not None or entry.state is State.READY:
        config = _repo(request).get(name, version).config
    elif entry.config is not None:
        config = entry.config
    else:
        raise ModelUnavailable(f"model {name!r} is {entry.state.value}: {entry.reason}")

    def spec(t: Any) -> dict[str, Any]:
        return {"name": t.name, "datatype": t.datatype, "shape": t.shape}

    return ORJSONResponse(
        {
            "name": name,
            "versions": [str(v) for v in sorted(entry.versions)],
            "platform": "onnxruntime_onnx",
            "inputs": [spec(t) for t in config.inputs],
            "outputs": [spec(t) for t in config.outputs],
        }
    )


@router.get("/models/{name}/ready", summary="Model readiness")
@router.get("/models/{name}/versions/{version}/ready", summary="Model version readiness")
async def model_ready(name: str, request: Request, version: str | None = None) -> ORJSONResponse:
    found = _repo(request).get(name, version)  # raises 404 / 503 with a JSON body
    return ORJSONResponse({"name": name, "version": str(found.version), "ready": True})


@router.get(
    "/models/{name}/config",
    summary="Model configuration (Triton's layout)",
    response_model=V2ModelConfig,
)
@router.get(
    "/models/{name}/versions/{version}/config",
    summary="Model version configuration",
    response_model=V2ModelConfig,
)
async def model_config(name: str, request: Request, version: str | None = None) -> ORJSONResponse:
    config = _repo(request).get(name, version).config
    b = config.batching

    def tensor(t: Any) -> dict[str, Any]:
        dims = t.shape[1:] if b.batched else t.shape  # Triton: dims exclude the batch axis
        return {"name": t.name, "data_type": f"TYPE_{t.datatype}", "dims": dims}

    return ORJSONResponse(
        {
            "name": config.name,
            "platform": "onnxruntime_onnx",
            "backend": "onnxruntime",
            "max_batch_size": b.max_batch_size,
            "input": [tensor(t) for t in config.inputs],
            "output": [tensor(t) for t in config.outputs],
            "dynamic_batching": {
                "preferred_batch_size": b.preferred_batch_sizes,
                "max_queue_delay_microseconds": int(b.max_queue_delay_ms * 1000),
                "default_queue_policy": {"max_queue_size": b.max_queue_size},
            },
            "instance_group": [{"count": config.runtime.instances, "kind": "KIND_AUTO"}],
            "parameters": {"task": {"string_value": config.task}},
            "fovea": config.model_dump(mode="json"),
        }
    )


@router.get(
    "/models/{name}/stats",
    summary="Model statistics (Triton's statistics extension)",
    response_model=V2ModelStats,
)
@router.get(
    "/models/{name}/versions/{version}/stats",
    summary="Model version statistics",
    response_model=V2ModelStats,
)
async def model_stats(name: str, request: Request, version: str | None = None) -> ORJSONResponse:
    entry = _repo(request).entry(name)
    versions = [_repo(request).get(name, version)] if version else list(entry.versions.values())
    stats = [v.recorder.stats.as_dict(v.name, str(v.version)) for v in versions]
    return ORJSONResponse({"model_stats": stats})


@router.post(
    "/models/{name}/infer",
    summary="Inference on tensors (JSON or binary)",
    response_model=V2InferResponse,
)
@router.post(
    "/models/{name}/versions/{version}/infer",
    summary="Inference on a model version",
    response_model=V2InferResponse,
)
async def infer(name: str, request: Request, version: str | None = None) -> Response:
    state = request.app.state
    deadline = Deadline.after_ms(state.settings.default_timeout_ms)
    model = _repo(request).get(name, version)
    request.state.model = name
    if model.admission.full:  # the task routes' door: refused before the body is read
        model.admission.refuse()
    body = await read_body(request, state.settings.max_upload_bytes)
    config = model.config
    parsed = parse_infer_request(
        body, request.headers.get(HEADER_LENGTH), config.inputs, config.outputs
    )
    rows = _rows(model, parsed.inputs)
    # The same bound on rows in flight as the task routes: v2 and task traffic share it.
    with model.admission.admit(rows):
        outputs = await _run(model, parsed.inputs, rows, deadline)
    if parsed.outputs is not None:
        outputs = {k: outputs[k] for k in parsed.outputs}
    payload, header_len = encode_infer_response(
        name, model.version, parsed.id, outputs, parsed.binary_outputs
    )
    if header_len is None:
        return Response(payload, media_type="application/json")
    return Response(
        payload,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(header_len)},
    )


def _rows(model: ModelVersion, inputs: dict[str, np.ndarray]) -> int:
    """The rows the request puts in flight: its batch, or one for a model without a batch axis
    (which takes the request's tensors as its one row)."""
    if not model.config.batching.batched:
        return 1
    n = next(iter(inputs.values())).shape[0]
    if n > model.config.batching.max_queue_size:
        raise BadRequest(
            f"batch of {n} rows exceeds what {model.name} can ever queue "
            f"({model.config.batching.max_queue_size}); split the request",
            code="batch_too_large",
        )
    return n


async def _run(
    model: ModelVersion, inputs: dict[str, np.ndarray], n: int, deadline: Deadline
) -> dict[str, np.ndarray]:
    """Split the request's batch of ``n`` into rows so they can share batches with other
    requests."""
    if not model.config.batching.batched:
        return (await model.infer([inputs], timeout_s=deadline.remaining_s()))[0]
    rows = [{k: v[i] for k, v in inputs.items()} for i in range(n)]
    try:
        results = await model.infer(rows, timeout_s=deadline.remaining_s())
    except RejectedInput as exc:
        shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in inputs.items())
        raise BadRequest(
            f"{model.name} cannot run the inputs ({shapes}): {exc}", code="invalid_input"
        ) from None
    return {k: np.stack([r[k] for r in results]) for k in results[0]}
