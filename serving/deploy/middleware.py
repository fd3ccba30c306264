"""ASGI pieces a replica adds around the Fovea app: who answered, and repository broadcasts."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.deploy.sync import Action

REPOSITORY_CHANGE = re.compile(r"^/v2/repository/models/(?P<model>[^/]+)/(?P<action>load|unload)$")
# The local load ran (ready, or failed with its reason): the other replicas must do the same.
CHANGED = (200, 422)

Publish = Callable[[Action, str], Awaitable[dict[str, str]]]


class ReplicaHeader:
    """Adds ``X-Fovea-Replica: <id>`` to every response, so clients and tests see the spread."""

    def __init__(self, app: ASGIApp, replica: str) -> None:
        self.app = app
        self.header = (b"x-fovea-replica", replica.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def tag(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, tag)


class BroadcastRepositoryChanges:
    """After this replica loads or unloads a model, publish the change and hold the (small)
    response until the other replicas have applied it; ``X-Fovea-Replicas`` lists each one's
    resulting state (``pending`` if it did not finish within the publisher's timeout)."""

    def __init__(self, app: ASGIApp, publish: Publish) -> None:
        self.app = app
        self.publish = publish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = REPOSITORY_CHANGE.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        start = held[0]
        if start["status"] in CHANGED:
            states = await self.publish(match["action"], match["model"])  # type: ignore[arg-type]
            start["headers"] = [
                *start.get("headers", []),
                (b"x-fovea-replicas", json.dumps(states, separators=(",", ":")).encode()),
            ]
        for message in held:
            await send(message)


async def asgi_get(app: ASGIApp, path: str) -> tuple[int, bytes]:
    """GET ``path`` from ``app`` in-process (no socket): status and body."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
        "root_path": "",
        "state": {},
    }
    status, body = 500, bytearray()

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, bytes(body)
