"""``fovea deploy ray``: submit a Serve config file (``serving/deploy/ray.yaml``) to a cluster.

It does what ``serve run CONFIG`` does without blocking, after two checks Serve cannot make:
Fovea settings are validated here, and relative store paths become absolute (a replica's working
directory is not yours). Serve's public API deploys applications, not config files, so this uses
the same internal call as Serve's own CLI.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import yaml

from serving.settings import Settings

PATH_SETTINGS = ("model_store", "face_gallery_dir", "collections_dir")


def load_config(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return yaml.safe_load(f)


def resolve(config: dict[str, Any], base: Path) -> dict[str, Any]:
    """A copy with each Fovea app's path settings absolute (from ``base``) and validated."""
    config = copy.deepcopy(config)
    for app in config.get("applications", []):
        if not str(app.get("import_path", "")).startswith("serving.deploy.ray_app"):
            continue
        settings = app.setdefault("args", {}).setdefault("settings", {})
        for name in PATH_SETTINGS:
            if name in settings:
                settings[name] = str((base / settings[name]).resolve())
        Settings(**settings)  # fail here, not in every replica
    return config


def deploy(config: dict[str, Any], address: str | None = None, timeout_s: float = 300) -> None:
    """Deploy every application of ``config`` and wait until all are RUNNING."""
    import ray
    from ray import serve
    from ray.serve._private import api as serve_api
    from ray.serve.config import gRPCOptions
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(config)
    if not ray.is_initialized():
        ray.init(address=address or "auto", namespace="serve")
    client = serve_api.serve_start(
        http_options=schema.http_options.model_dump(),
        proxy_location=schema.proxy_location,
        grpc_options=gRPCOptions(**schema.grpc_options.model_dump()),
    )
    client.deploy_apps(schema, _blocking=False)
    wait_running([app.name for app in schema.applications], timeout_s, serve.status)


def wait_running(names: list[str], timeout_s: float, status: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        apps = status().applications
        states = {n: apps[n].status if n in apps else "NOT_STARTED" for n in names}
        if all(s == "RUNNING" for s in states.values()):
            return
        failed = {n: apps[n].message for n, s in states.items() if s == "DEPLOY_FAILED"}
        if failed:
            raise RuntimeError(f"deploy failed: {failed}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"applications not running after {timeout_s} s: {states}")
        time.sleep(0.5)
