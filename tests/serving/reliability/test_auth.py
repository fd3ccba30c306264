"""API keys and scopes: 401 without a valid key, 403 without the scope, Bearer enforced, and
the key's name (never the key) in logs and metrics."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.server import LiveServer
from tests.serving.reliability.test_slow_clients import BODY

INFER_KEY = "k-infer-7c1e0f9a52b3d84e"
READ_KEY = "k-gallery-ro-0a9f33b81c7d"
WRITE_KEY = "k-gallery-rw-5d2e7a41b09c"
ADMIN_TOKEN = "admin-token-e4b1c8d27f60"
SECRETS = (INFER_KEY, READ_KEY, WRITE_KEY, ADMIN_TOKEN)
INFER = "/v2/models/scale/infer"
GALLERY = "/v1/faces/gallery"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from tests.models import write_model_folder

    root = tmp_path_factory.mktemp("auth")
    write_model_folder(root / "store", "scale")
    key_file = root / "keys.yaml"
    key_file.write_text(
        yaml.safe_dump(
            {
                "keys": [
                    {"name": "gallery-ro", "sha256": sha(READ_KEY), "scopes": ["gallery:read"]},
                    {
                        "name": "gallery-rw",
                        "sha256": sha(WRITE_KEY),
                        "scopes": ["gallery:read", "gallery:write"],
                    },
                ]
            }
        )
    )
    with LiveServer(
        root / "store",
        api_keys=[{"name": "frontend", "key": INFER_KEY, "scopes": ["infer"]}],
        api_keys_file=key_file,
        admin_token=ADMIN_TOKEN,
    ) as server:
        yield server


def call(srv: LiveServer, method: str, path: str, headers: dict[str, str] | None = None) -> int:
    content = BODY if path == INFER else None
    return httpx.request(method, srv.url + path, headers=headers, content=content).status_code


def test_health_and_metrics_need_no_key(srv: LiveServer) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"):
        assert call(srv, "GET", path) == 200, path


def test_missing_unknown_or_malformed_keys_are_401(srv: LiveServer) -> None:
    r = httpx.post(srv.url + INFER, content=BODY)
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")
    for headers in (
        bearer("not-a-key-at-all-123"),
        {"Authorization": INFER_KEY},  # the key without the Bearer scheme
        {"Authorization": f"Basic {INFER_KEY}"},
        {"Authorization": "Bearer"},
        {"X-API-Key": "wrong"},
    ):
        assert call(srv, "POST", INFER, headers) == 401, headers
    for path in ("/openapi.json", "/v1/models", "/v2/models/scale", "/v2"):
        assert call(srv, "GET", path) == 401, path


@pytest.mark.parametrize(
    ("key", "method", "path", "allowed"),
    [
        (INFER_KEY, "POST", INFER, True),
        (INFER_KEY, "GET", "/v1/models", True),
        (INFER_KEY, "GET", "/openapi.json", True),
        (INFER_KEY, "GET", GALLERY, False),
        (INFER_KEY, "POST", "/v1/faces/identify", False),
        (INFER_KEY, "DELETE", GALLERY + "/alice", False),
        (INFER_KEY, "POST", "/v2/repository/models/scale/load", False),
        (READ_KEY, "GET", GALLERY, True),
        (READ_KEY, "POST", "/v1/faces/identify", True),
        (READ_KEY, "GET", "/v1/collections/pets", True),
        (READ_KEY, "POST", GALLERY + "/alice", False),
        (READ_KEY, "DELETE", GALLERY + "/alice", False),
        (READ_KEY, "POST", "/v1/collections/pets/items", False),
        (READ_KEY, "POST", INFER, False),
        (WRITE_KEY, "DELETE", GALLERY + "/alice", True),
        (WRITE_KEY, "POST", GALLERY + "/alice", True),
        (WRITE_KEY, "POST", "/v2/repository/models/scale/unload", False),
        (ADMIN_TOKEN, "POST", INFER, True),
        (ADMIN_TOKEN, "DELETE", GALLERY + "/alice", True),
    ],
)
def test_scopes(srv: LiveServer, key: str, method: str, path: str, allowed: bool) -> None:
    for headers in (bearer(key), {"X-API-Key": key}):
        status = call(srv, method, path, headers)
        # Allowed requests reach the route (which may answer 404/422 for its own reasons).
        assert (status not in (401, 403)) if allowed else status == 403, (headers, status)


def test_admin_token_loads_models_and_keys_are_never_logged(
    srv: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        assert call(srv, "POST", INFER, bearer(INFER_KEY)) == 200
        assert call(srv, "POST", INFER, bearer("a-wrong-key-0123456")) == 401
        assert call(srv, "GET", GALLERY, bearer(INFER_KEY)) == 403
        r = httpx.post(srv.url + "/v2/repository/models/scale/load", headers=bearer(ADMIN_TOKEN))
        assert r.status_code == 200
    assert "'frontend' lacks 'gallery:read'" in caplog.text
    metrics = httpx.get(srv.url + "/metrics").text
    assert 'fovea_auth_checks_total{key="frontend",outcome="allowed",scope="infer"}' in metrics
    assert 'key="admin-token",outcome="allowed",scope="admin"' in metrics
    for secret in (*SECRETS, "a-wrong-key-0123456"):
        assert secret not in caplog.text and secret not in metrics


def test_only_the_admin_token_guards_admin_and_gallery_writes(tiny_store: Path) -> None:
    with LiveServer(tiny_store, admin_token=ADMIN_TOKEN) as srv:
        assert call(srv, "POST", INFER) == 200  # inference stays open
        assert call(srv, "GET", GALLERY) not in (401, 403)  # so do gallery reads
        assert call(srv, "DELETE", GALLERY + "/alice") == 401
        assert call(srv, "POST", GALLERY + "/alice") == 401
        assert call(srv, "DELETE", GALLERY + "/alice", bearer(ADMIN_TOKEN)) not in (401, 403)
        assert (
            call(srv, "POST", "/v2/repository/models/scale/load", {"Authorization": ADMIN_TOKEN})
            == 401
        )
        assert call(srv, "POST", "/v2/repository/models/scale/load", bearer(ADMIN_TOKEN)) == 200


def test_key_files_must_hold_digests(tmp_path: Path, tiny_store: Path) -> None:
    from serving.app import create_app
    from serving.settings import Settings

    keys = tmp_path / "keys.yaml"
    keys.write_text(
        yaml.safe_dump({"keys": [{"name": "x", "key": INFER_KEY, "scopes": ["infer"]}]})
    )
    with pytest.raises(ValueError, match="store 'sha256', not 'key'"):
        create_app(Settings(model_store=tiny_store, api_keys_file=keys))
