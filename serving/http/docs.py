"""OpenAPI descriptions of request bodies that FastAPI cannot infer from a signature."""

from __future__ import annotations

from typing import Any

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
