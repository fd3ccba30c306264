"""The error the client raises for any non-2xx answer, with the server's code and request id."""

from __future__ import annotations


class FoveaAPIError(Exception):
    def __init__(self, status: int, message: str, code: str, request_id: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.message = message
        self.code = code
        self.request_id = request_id
