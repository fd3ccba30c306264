"""Response schemas of the operational and v2 endpoints, for the OpenAPI document.

The routes build their JSON by hand (orjson, no validation on the hot path); these models say
what that JSON is, so ``/openapi.json`` is a document a client generator can use.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class VersionInfo(BaseModel):
    providers: list[str] = Field(description="ONNX Runtime execution providers, in use order")
    state: str


class ModelInfo(BaseModel):
    name: str
    task: str | None = Field(description="classification, detection, ...; null if unreadable")
    state: str = Field(description="loading, ready, failed or unloaded")
    reason: str | None = Field(description="why the model failed, if it did")
    default_version: int | None
    versions: dict[str, VersionInfo] = Field(description="loaded versions by number")
    config: dict[str, Any] | None = Field(description="the model's validated config.yaml")


class ModelList(BaseModel):
    models: list[ModelInfo]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool = Field(description="every model finished loading and the server is not draining")
    models: dict[str, str] = Field(description="model name -> state")
    unavailable_stores: dict[str, str] = Field(
        default_factory=dict,
        description="vector store (faces/<model>, collections/<name>) -> why it answers 503; "
        "readiness is not affected",
    )


class RepositoryRow(BaseModel):
    name: str
    state: str = Field(description="READY, LOADING, FAILED, UNLOADED or UNAVAILABLE")
    reason: str | None = None


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorSpec(BaseModel):
    name: str
    datatype: str = Field(description="v2 datatype, e.g. FP32")
    shape: list[int] = Field(description="-1 for a variable dimension")


class V2ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


class V2Tensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | None = Field(
        default=None, description="row-major values; absent when sent as binary"
    )
    parameters: dict[str, Any] | None = Field(
        default=None, description="binary_data_size when the tensor follows the JSON header"
    )


class V2InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    outputs: list[V2Tensor]


class V2ModelConfig(BaseModel):
    """Triton's model configuration layout, plus the whole Fovea config under ``fovea``."""

    name: str
    platform: str
    backend: str
    max_batch_size: int
    input: list[dict[str, Any]]
    output: list[dict[str, Any]]
    dynamic_batching: dict[str, Any]
    instance_group: list[dict[str, Any]]
    parameters: dict[str, Any]
    fovea: dict[str, Any]


class V2ModelStats(BaseModel):
    model_stats: list[dict[str, Any]] = Field(
        description="Triton's statistics extension: counts and durations (ns) per version"
    )
