"""Errors that reach clients: each carries its HTTP status and a machine-readable code."""

from __future__ import annotations


class FoveaError(Exception):
    status: int = 500
    code: str = "internal_error"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(FoveaError):
    status, code = 400, "bad_request"


class InvalidImage(FoveaError):
    status, code = 400, "invalid_image"


class NotFound(FoveaError):
    status, code = 404, "not_found"


class PayloadTooLarge(FoveaError):
    status, code = 413, "payload_too_large"


class UnsupportedMedia(FoveaError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(FoveaError):
    status, code = 422, "validation_error"


class RequestTimeout(FoveaError):
    """The client sent its request too slowly; the connection is closed after the answer."""

    status, code = 408, "request_timeout"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers = {"Connection": "close"}


class Overloaded(FoveaError):
    """The queue is full: fail fast so clients back off instead of piling up latency."""

    status, code = 503, "overloaded"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


class ModelUnavailable(FoveaError):
    status, code = 503, "model_unavailable"


class DeadlineExceeded(FoveaError):
    status, code = 504, "deadline_exceeded"


class InferenceFailed(FoveaError):
    status, code = 500, "inference_failed"
