"""One log format for the whole process (ours and uvicorn's): plain text or JSON lines.

Every line carries a UTC ISO-8601 timestamp with milliseconds and the id of the request being
served, if any, so one grep by request id finds the access line and anything logged meanwhile.
"""

from __future__ import annotations

import contextvars
import logging
import time
from typing import Any, Literal

import orjson

LogFormat = Literal["plain", "json"]

# Set by the access middleware for the duration of one request.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_STD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


class UtcFormatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


class PlainFormatter(UtcFormatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):  # records formatted without our filter
            record.request_id = request_id.get()
        return super().format(record)


class JsonFormatter(UtcFormatter):
    """One JSON object per line: ts, level, logger, request_id, msg, plus any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", request_id.get()),
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD and key not in doc and not key.startswith("_"):
                doc[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


def logging_config(level: str, fmt: LogFormat = "plain") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document; uvicorn takes it as ``log_config`` too."""
    formatter = PlainFormatter if fmt == "plain" else JsonFormatter
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "fovea",
        "filters": ["request_id"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"fovea": {"()": formatter}},
        "handlers": {"stderr": handler},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        # uvicorn's own loggers go through the same handler (and so the same format).
        "loggers": {
            name: {"handlers": [], "level": level.upper(), "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
