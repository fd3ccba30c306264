"""Server settings: flags of ``fovea serve`` and ``FOVEA_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FOVEA_", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    model_store: Path = Path("model_store")
    log_level: str = "info"
    graceful_shutdown_s: float = Field(default=20.0, ge=0, description="drain window on SIGTERM")
    max_upload_bytes: int = Field(default=32 * 1024 * 1024, gt=0, description="whole request body")
    max_image_pixels: int = Field(default=50_000_000, gt=0, description="width x height per image")
    max_images_per_request: int = Field(default=64, gt=0)
    decode_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1, gt=0, description="image decode workers"
    )
    default_timeout_ms: float = Field(default=30_000, gt=0, description="per-request deadline")
    admin_token: str | None = Field(default=None, description="required by load/unload if set")
    load_models: list[str] | None = Field(default=None, description="subset to load at start")
    intra_op_threads: int | None = Field(
        default=None,
        ge=1,
        description="overrides every model's runtime.intra_op_threads: a process sized to N "
        "CPUs (a Ray replica, a container) sets N so its sessions do not oversubscribe the node",
    )
    face_gallery_dir: Path = Field(
        default=Path("face_gallery"), description="enrolled faces, one store per embedding model"
    )
    collections_dir: Path = Field(
        default=Path("collections"), description="image collections, one store per collection"
    )
