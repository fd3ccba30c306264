"""``/openapi.json`` is a valid OpenAPI document that tells the truth about errors and types."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from serving.app import create_app
from serving.settings import Settings
from tests.conftest import MODEL_STORE


@pytest.fixture(scope="module")
def doc() -> dict:
    return create_app(Settings(model_store=MODEL_STORE)).openapi()


def test_document_validates_against_the_openapi_schema(doc: dict) -> None:
    validate(doc)  # raises with the offending path if not


def test_every_task_route_documents_the_real_error_bodies(doc: dict) -> None:
    error = {"$ref": "#/components/schemas/ErrorBody"}
    tasks = ["/v1/classify", "/v1/detect", "/v1/segment", "/v1/caption", "/v1/vqa"]
    tasks += ["/v1/faces/detect", "/v1/faces/embed", "/v1/faces/verify", "/v1/faces/identify"]
    for path in tasks:
        responses = doc["paths"][path]["post"]["responses"]
        for status in ("400", "404", "413", "415", "422", "503", "504"):
            assert responses[status]["content"]["application/json"]["schema"] == error, (
                path,
                status,
            )
        assert "Retry-After" in responses["503"]["headers"]
    assert set(doc["components"]["schemas"]["ErrorBody"]["required"]) == {"error", "code"}
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_models_and_v2_responses_are_typed(doc: dict) -> None:
    def ok_schema(path: str, method: str = "get") -> dict:
        return doc["paths"][path][method]["responses"]["200"]["content"]["application/json"][
            "schema"
        ]

    assert ok_schema("/v1/models") == {"$ref": "#/components/schemas/ModelList"}
    assert ok_schema("/v2/models/{name}") == {"$ref": "#/components/schemas/V2ModelMetadata"}
    infer = ok_schema("/v2/models/{name}/infer", "post")
    assert infer == {"$ref": "#/components/schemas/V2InferResponse"}
    assert doc["paths"]["/v2/models/{name}"]["get"]["responses"]["404"]


def test_docs_load_only_local_assets() -> None:
    client = TestClient(create_app(Settings(model_store=MODEL_STORE)))  # no lifespan: no models
    html = client.get("/docs").text
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html)
    assert assets and all(a.startswith("/") for a in assets), assets
    assert "/openapi.json" in html
    for asset in assets:
        r = client.get(asset)
        assert r.status_code == 200 and len(r.content) > 100, asset
    assert client.get("/openapi.json").json()["info"]["title"] == "Fovea"
    assert client.get("/docs/assets/../../app.py").status_code == 404
