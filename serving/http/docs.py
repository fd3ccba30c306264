"""OpenAPI descriptions of request bodies that FastAPI cannot infer from a signature."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

IMAGE_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "one or more image files (JPEG, PNG, WebP, BMP)",
                        }
                    },
                    "required": ["image"],
                    "additionalProperties": {"type": "string", "description": "task options"},
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "images": {
                            "type": "array",
                            "items": {"type": "string", "format": "byte"},
                            "description": "base64-encoded images",
                        }
                    },
                    "required": ["images"],
                    "additionalProperties": True,
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


class ErrorBody(BaseModel):
    """Every error the server returns, whatever the status."""

    error: str = Field(description="what was wrong, for a human")
    code: str = Field(description="machine-readable reason, e.g. invalid_image, overloaded")


_ERRORS = {
    400: "bad input: undecodable image, bad base64/JSON, wrong tensor shape or dtype",
    404: "unknown model or version",
    413: "body, image or image count too large",
    415: "unsupported media type",
    422: "invalid options",
    503: "queue full (with Retry-After) or model not ready",
    504: "deadline exceeded",
}


def error_responses() -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": text} for status, text in _ERRORS.items()}


def option_parameters(options: type[BaseModel], path_params: set[str]) -> list[dict[str, Any]]:
    """A task's options as OpenAPI parameters (they may also come as form fields or JSON keys)."""
    schema = options.model_json_schema(ref_template="#/components/schemas/{model}")
    params = []
    for name, prop in schema.get("properties", {}).items():
        location = "path" if name in path_params else "query"
        description = prop.pop("description", "")
        prop.pop("title", None)
        params.append(
            {
                "name": name,
                "in": location,
                "required": location == "path",
                "description": description,
                "schema": prop,
            }
        )
    return params
