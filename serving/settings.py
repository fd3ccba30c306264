"""Server settings: flags of ``fovea serve`` and ``FOVEA_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.core.threads import ThreadBudget, plan

Scope = Literal["infer", "gallery:read", "gallery:write", "admin"]


class ApiKeySpec(BaseModel):
    """One API key: a name for logs and metrics, its scopes, and the key or its SHA-256.

    Key files hold only ``sha256`` (the key never rests on disk); ``key`` is accepted from the
    environment and hashed at start.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    scopes: list[Scope] = Field(min_length=1)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    key: str | None = Field(default=None, min_length=16, repr=False)

    @model_validator(mode="after")
    def _one_secret(self) -> ApiKeySpec:
        if (self.sha256 is None) == (self.key is None):
            raise ValueError(f"key {self.name!r}: give exactly one of 'sha256' or 'key'")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FOVEA_", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    model_store: Path = Path("model_store")
    log_level: str = "info"
    log_format: Literal["plain", "json"] = Field(default="plain", description="log line format")
    access_log: bool = Field(default=True, description="one log line per HTTP request")
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
        description="ONNX Runtime threads per session; set, it overrides every model's config "
        "(a Ray replica or container sized to N CPUs sets N); unset, models at 0 get the budget's",
    )
    compute_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="nice increment of decode and ONNX Runtime threads: the event loop (admission, "
        "503s, health) answers first when they saturate the cores; 0 keeps one priority",
    )
    default_timeout_ms: float = Field(default=30_000, gt=0, description="per-request deadline")
    admin_token: str | None = Field(
        default=None, description="an admin-scope key: load/unload and gallery writes need it"
    )
    api_keys: list[ApiKeySpec] = Field(
        default_factory=list, description="API keys (JSON list in FOVEA_API_KEYS)"
    )
    api_keys_file: Path | None = Field(
        default=None, description="YAML file with 'keys: [{name, sha256, scopes}]'"
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed by CORS; empty turns CORS off"
    )
    cors_methods: list[str] = Field(default_factory=lambda: ["GET", "POST", "DELETE"])
    cors_headers: list[str] = Field(
        default_factory=lambda: ["Authorization", "X-API-Key", "Content-Type"]
    )
    cors_max_age_s: int = Field(default=600, ge=0, description="how long preflights are cached")
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="a request's headers must arrive within this time"
    )
    body_timeout_s: float = Field(
        default=60.0, gt=0, description="a request's whole body must arrive within this time"
    )
    load_models: list[str] | None = Field(default=None, description="subset to load at start")
    shared_dir: Path | None = Field(
        default=None,
        description="set by `fovea serve --workers N` for its workers: control log and metrics",
    )
    face_gallery_dir: Path = Field(
        default=Path("face_gallery"), description="enrolled faces, one store per embedding model"
    )
    collections_dir: Path = Field(
        default=Path("collections"), description="image collections, one store per collection"
    )

    def thread_budget(self) -> ThreadBudget:
        """Per-worker decode and ORT threads: explicit settings win, the rest share the cores."""
        return plan(
            cores=self.cores,
            workers=self.workers,
            decode_threads=self.decode_threads,
            intra_op_threads=self.intra_op_threads,
        )
