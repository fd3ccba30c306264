"""The task contract: what every task declares, in the fixed order the HTTP layer drives it.

A task endpoint (:class:`Task`) declares its path, the model task that serves it, its options,
its response type and ``run``. The per-model-version state (preprocessor, labels, the models it
depends on) lives in a :class:`Pipeline`, built and bound when the model loads, never per request.
Option defaults resolve in :func:`resolve_options` only: request > model config > server settings.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from serving.core.deadline import Deadline
from serving.errors import BadRequest
from serving.settings import Settings

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion

Opts = TypeVar("Opts", bound="TaskOptions")
R = TypeVar("R", bound=BaseModel)
P = TypeVar("P", bound="Pipeline")
T = TypeVar("T")


class TaskOptions(BaseModel):
    """Options every task endpoint takes; unknown options are rejected, not ignored.

    ``None`` means "not given": :func:`resolve_options` fills it from the model's config, then
    from the server's settings.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str | None = Field(default=None, description="model name; the task's default if unset")
    version: int | None = Field(default=None, ge=1, description="model version; default if unset")
    timeout_ms: float | None = Field(
        default=None,
        gt=0,
        le=600_000,
        description="deadline in ms; the model's batching.default_timeout_ms, else the server's",
    )


class ModelResponse(BaseModel):
    """Every task response names the model version that answered."""

    model: str
    version: int


class Pipeline:
    """One model version's task state, built when the model loads.

    ``dependencies`` names the other models this one needs (role -> model name, from its typed
    config); the repository resolves them and calls ``bind`` at load and whenever one of them
    reloads, so a missing or unfit dependency fails this model's load with the reason.
    """

    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        self.version = version
        self.settings = settings
        self.pool = pool

    def option_defaults(self) -> dict[str, Any]:
        """Option values this model's config sets when a request leaves them out."""
        return {"timeout_ms": self.version.config.batching.default_timeout_ms}

    def dependencies(self) -> dict[str, str]:
        return {}

    def bind(self, models: Mapping[str, ModelVersion]) -> None:
        """Receive the resolved dependencies; raise ``ValueError`` if one does not fit."""

    def side_file_lines(self, filename: str) -> list[str]:
        """A labels/answers file in the model folder: one entry per line, trailing blanks cut."""
        lines = (self.version.folder.parent / filename).read_text(encoding="utf-8").splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        return lines

    async def offload_each(self, fn: Callable[..., T], *columns: Sequence[Any]) -> list[T]:
        """``fn(a, b, ...)`` for each row of the columns, on the decode pool, keeping order."""
        loop = asyncio.get_running_loop()
        return list(
            await asyncio.gather(
                *(loop.run_in_executor(self.pool, fn, *args) for args in zip(*columns, strict=True))
            )
        )


@dataclass(frozen=True)
class TaskRequest(Generic[Opts]):
    images: list[bytes]
    options: Opts
    deadline: Deadline


class Task(ABC, Generic[P, Opts, R]):
    """One task endpoint. Subclasses set the class attributes and implement ``run``."""

    path: ClassVar[str]
    summary: ClassVar[str]
    model_task: ClassVar[str]  # the ``task`` of the model configs that serve it
    options: type[Opts]
    response: type[R]
    method: ClassVar[str] = "POST"
    images: ClassVar[tuple[int, int | None]] = (1, None)  # fewest, most; (0, 0): no body
    tags: ClassVar[tuple[str, ...]] = ("tasks",)
    exclude_none: ClassVar[bool] = False  # leave unset optional fields out of the JSON
    image_count_code: ClassVar[str] = "wrong_image_count"
    extra_body_fields: ClassVar[dict[str, dict[str, Any]]] = {}  # OpenAPI, besides images

    def check_images(self, images: list[bytes]) -> None:
        fewest, most = self.images
        if most is not None and not fewest <= len(images) <= most:
            wanted = str(fewest) if fewest == most else f"{fewest} to {most}"
            raise BadRequest(
                f"{self.path} takes {wanted} image(s), got {len(images)}",
                code=self.image_count_code,
            )

    @abstractmethod
    async def run(self, pipeline: P, request: TaskRequest[Opts]) -> R: ...


def resolve_options(options: Opts, model: Mapping[str, Any], settings: Settings) -> Opts:
    """Fill every option the request left unset: the model's config first, then the server's."""
    server = {"timeout_ms": settings.default_timeout_ms}
    unset = {
        name: value
        for name, value in ({**server, **{k: v for k, v in model.items() if v is not None}}).items()
        if name in type(options).model_fields and getattr(options, name) is None
    }
    return options.model_copy(update=unset) if unset else options
