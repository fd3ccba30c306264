"""The client's result models against the server's task responses: no field left behind.

The client keeps its own models (the server's live beside numpy and ONNX Runtime, which a client
must not import); this test is what keeps the two from drifting apart.
"""

from __future__ import annotations

import types
import typing

import pytest
from pydantic import BaseModel

from serving.client import models as client
from serving.tasks import TASKS

CLIENT_RESPONSE = {
    ("POST", "/v1/classify"): client.ClassifyResponse,
    ("POST", "/v1/embed"): client.EmbedResponse,
    ("POST", "/v1/detect"): client.DetectResponse,
    ("POST", "/v1/segment"): client.SegmentResponse,
    ("POST", "/v1/caption"): client.CaptionResponse,
    ("POST", "/v1/vqa"): client.VqaResponse,
    ("POST", "/v1/faces/detect"): client.FacesDetectResponse,
    ("POST", "/v1/faces/embed"): client.FacesEmbedResponse,
    ("POST", "/v1/faces/verify"): client.VerifyResponse,
    ("POST", "/v1/faces/identify"): client.IdentifyResponse,
    ("POST", "/v1/faces/gallery/{identity}"): client.EnrolResponse,
    ("GET", "/v1/faces/gallery"): client.GalleryResponse,
    ("DELETE", "/v1/faces/gallery/{identity}"): client.ForgetResponse,
}


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def field_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted paths of every field, nested models included: ``results.predictions.label``."""
    paths = set()
    for name, info in model.model_fields.items():
        paths.add(prefix + name)
        for nested in _models_in(info.annotation):
            paths |= field_paths(nested, f"{prefix}{name}.")
    return paths


def test_every_task_endpoint_has_a_client_model() -> None:
    assert {(t.method, t.path) for t in TASKS} == set(CLIENT_RESPONSE)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: f"{t.method} {t.path}")
def test_client_model_reads_every_field_the_server_sends(task) -> None:
    missing = field_paths(task.response) - field_paths(CLIENT_RESPONSE[task.method, task.path])
    assert not missing, f"client model lacks {sorted(missing)}"
