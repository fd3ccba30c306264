"""API keys with scopes, checked once per request by one ASGI middleware.

Off by default. ``FOVEA_ADMIN_TOKEN`` alone guards what changes the server (model load/unload,
gallery writes); with API keys configured, every endpoint except health and metrics needs a key
whose scopes cover the route. Which scope a route needs is the table :data:`RULES` (path
pattern + method), so route modules never deal with auth.

Keys are held only as SHA-256 digests and compared with :func:`hmac.compare_digest` against
every known key (no early exit). Clients send ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``. A missing or unknown key is 401; a known key without the scope is 403.
Logs and metrics name the key, never the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import orjson
import yaml
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.core.metrics import Metrics
from serving.settings import ApiKeySpec, Settings

log = logging.getLogger(__name__)

PUBLIC = "public"  # no key needed
AUTHENTICATED = "authenticated"  # any valid key (docs, OpenAPI, unknown paths)
_READS = frozenset({"GET", "HEAD"})
_GALLERY = r"/v1/(?:faces/gallery|collections)(?:/.*)?"


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    methods: frozenset[str] | None  # None: every method
    scope: str


def _rule(pattern: str, scope: str, methods: frozenset[str] | None = None) -> Rule:
    return Rule(re.compile(pattern), methods, scope)


# First match wins. Gallery-like stores (the face gallery, vector collections) need
# gallery:read to read (including searches that only read) and gallery:write to change.
RULES: tuple[Rule, ...] = (
    _rule(r"/(?:healthz|readyz|metrics)", PUBLIC),
    # The demo page and its files hold no data; a browser cannot send a key to open them, and
    # the page then sends the key the user types with every API call.
    _rule(r"/|/static/[^/]+", PUBLIC, _READS),
    _rule(r"/v2/health/(?:live|ready)", PUBLIC),
    _rule(r"/v2/repository/models/[^/]+/(?:load|unload)", "admin"),
    _rule(r"/v1/stores/[^/]+/[^/]+/restore", "admin"),
    _rule(r"/v1/stores(?:/.*)?", "gallery:read"),
    _rule(r"/v1/faces/identify", "gallery:read"),
    _rule(r"/v1/collections/[^/]+/(?:search|query)", "gallery:read"),
    _rule(_GALLERY, "gallery:read", _READS),
    _rule(_GALLERY, "gallery:write"),
    _rule(r"/v[12](?:/.*)?", "infer"),
)
# With only the admin token set, these scopes are enforced and everything else stays open.
_ADMIN_TOKEN_GUARDS = frozenset({"admin", "gallery:write"})


def required_scope(method: str, path: str) -> str:
    for rule in RULES:
        if (rule.methods is None or method in rule.methods) and rule.pattern.fullmatch(path):
            return rule.scope
    return AUTHENTICATED


@dataclass(frozen=True)
class Key:
    name: str
    digest: bytes
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope == AUTHENTICATED or "admin" in self.scopes or scope in self.scopes


class _KeyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[ApiKeySpec]


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def load_keys(settings: Settings) -> list[Key]:
    """Keys from the environment, the key file and the admin token, all as digests."""
    specs = list(settings.api_keys)
    if settings.api_keys_file is not None:
        specs += read_key_file(settings.api_keys_file)
    keys = [
        Key(
            s.name,
            bytes.fromhex(s.sha256) if s.sha256 else _digest(s.key or ""),
            frozenset(s.scopes),
        )
        for s in specs
    ]
    if settings.admin_token:
        keys.append(Key("admin-token", _digest(settings.admin_token), frozenset({"admin"})))
    names = [k.name for k in keys]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"API key names must be unique; repeated: {duplicates}")
    return keys


def read_key_file(path: Path) -> list[ApiKeySpec]:
    try:
        doc = _KeyFile.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"API key file {path}: {exc}") from None
    plain = [s.name for s in doc.keys if s.key is not None]
    if plain:
        raise ValueError(f"API key file {path}: store 'sha256', not 'key', for {plain}")
    return doc.keys


class ApiKeyAuth:
    """Pure ASGI middleware: find the route's scope, identify the key, pass, 401 or 403."""

    def __init__(self, app: ASGIApp, keys: list[Key], *, keys_configured: bool, metrics: Metrics):
        self.app = app
        self.keys = keys
        # Only the admin token: guard what changes the server, leave the rest open.
        self.enforced = None if keys_configured else _ADMIN_TOKEN_GUARDS
        self.checks = Counter(
            "fovea_auth_checks",
            "authenticated requests by key name, scope and outcome",
            ["key", "scope", "outcome"],
            registry=metrics.registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)  # CORS answers preflights outside of us
            return
        needed = required_scope(scope["method"], scope["path"])
        if needed == PUBLIC or (self.enforced is not None and needed not in self.enforced):
            await self.app(scope, receive, send)
            return
        secret, problem = _presented(scope)
        key = self._match(secret) if secret is not None else None
        if key is None:
            self.checks.labels("", needed, "unauthenticated").inc()
            log.info("401 %s %s: %s", scope["method"], scope["path"], problem or "unknown key")
            await _deny(send, 401, problem or "unknown API key", "unauthorized")
            return
        if not key.allows(needed):
            self.checks.labels(key.name, needed, "forbidden").inc()
            log.info("403 %s %s: key %r lacks %r", scope["method"], scope["path"], key.name, needed)
            await _deny(send, 403, f"key {key.name!r} lacks the scope {needed!r}", "forbidden")
            return
        self.checks.labels(key.name, needed, "allowed").inc()
        scope.setdefault("state", {})["api_key"] = key.name
        await self.app(scope, receive, send)

    def _match(self, secret: str) -> Key | None:
        digest = _digest(secret)
        found = None
        for key in self.keys:  # compare against all: the time does not depend on which matched
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found


def _presented(scope: Scope) -> tuple[str | None, str | None]:
    """The key sent with the request, or why there is none."""
    headers = dict(scope["headers"])
    auth = headers.get(b"authorization")
    if auth is not None:
        kind, _, value = auth.decode("latin-1").partition(" ")
        if kind.lower() != "bearer" or not value.strip():
            return None, "the Authorization header must be 'Bearer <key>'"
        return value.strip(), None
    api_key = headers.get(b"x-api-key")
    if api_key is not None and api_key.strip():
        return api_key.decode("latin-1").strip(), None
    return None, "this endpoint needs an API key: 'Authorization: Bearer <key>' or 'X-API-Key'"


async def _deny(send: Send, status: int, message: str, code: str) -> None:
    body = orjson.dumps({"error": message, "code": code})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="fovea"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
