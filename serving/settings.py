"""Server settings: flags of ``fovea serve`` and ``FOVEA_*`` environment variables."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.core.threads import ThreadBudget, plan


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
    workers: int = Field(default=1, ge=1, description="server processes, each a full app")
    cores: int | None = Field(
        default=None, gt=0, description="cores to budget for; affinity/cgroup quota if unset"
    )
    decode_threads: int | None = Field(
        default=None, gt=0, description="image decode threads per worker; from the budget if unset"
    )
    intra_op_threads: int | None = Field(
        default=None,
        gt=0,
        description="ONNX Runtime threads per session for models that leave it at 0; budget",
    )
    default_timeout_ms: float = Field(default=30_000, gt=0, description="per-request deadline")
    admin_token: str | None = Field(default=None, description="required by load/unload if set")
    load_models: list[str] | None = Field(default=None, description="subset to load at start")
    shared_dir: Path | None = Field(
        default=None,
        description="set by `fovea serve --workers N` for its workers: control log and metrics",
    )
    face_gallery_dir: Path = Field(
        default=Path("face_gallery"), description="enrolled faces, one file per embedding model"
    )

    def thread_budget(self) -> ThreadBudget:
        """Per-worker decode and ORT threads: explicit settings win, the rest share the cores."""
        return plan(
            cores=self.cores,
            workers=self.workers,
            decode_threads=self.decode_threads,
            intra_op_threads=self.intra_op_threads,
        )


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"
    )
