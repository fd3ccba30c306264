"""The one route preamble every task endpoint shares, and the factory that mounts the tasks.

door check -> read body -> parse options (the task's pydantic model) -> pick the model ->
resolve defaults -> deadline -> admission -> ``task.run`` -> the task's typed response,
serialised once with orjson.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from serving.core.deadline import Deadline
from serving.http.docs import IMAGE_REQUEST_BODY, error_responses, option_parameters
from serving.http.inputs import ImageRequest, parse_options, read_image_request
from serving.http.responses import ORJSONResponse
from serving.tasks.contract import Task, TaskRequest, resolve_options


def task_router(tasks: Iterable[Task]) -> APIRouter:
    router = APIRouter()
    for task in tasks:
        router.add_api_route(
            task.path,
            _endpoint(task),
            methods=[task.method],
            response_model=task.response,
            response_model_exclude_none=task.exclude_none,
            summary=task.summary,
            description=(type(task).__doc__ or "").strip(),
            tags=list(task.tags),
            responses=error_responses(),
            openapi_extra=_openapi(task),
            name=type(task).__name__,
        )
    return router


def _endpoint(task: Task) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state = request.app.state
        if task.images == (0, 0):
            req = ImageRequest([], dict(request.query_params))
        else:
            _door(request, task)
            req = await read_image_request(request, state.settings)
        req.options.update(request.path_params)
        options = parse_options(task.options, req.options)
        version = state.repository.for_task(task.model_task, options.model, options.version)
        request.state.model = version.name
        pipeline = version.pipeline
        options = resolve_options(options, pipeline.option_defaults(), state.settings)
        task.check_images(req.images)
        deadline = Deadline.after_ms(options.timeout_ms)
        # Admission at the door: refused (503) before any image is decoded if this model's
        # rows in flight would exceed its bound; the rows count until the answer is ready.
        with version.admission.admit(len(req.images)):
            result = await task.run(pipeline, TaskRequest(req.images, options, deadline))
        return ORJSONResponse(result.model_dump(mode="json", exclude_none=task.exclude_none))

    endpoint.__name__ = type(task).__name__.lower()
    return endpoint


def _door(request: Request, task: Task) -> None:
    """Refuse (503) before the body is read when the model the request can reach is already
    at its bound: under overload a refusal then costs neither reading nor parsing a body."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = ctype.startswith("image/") or ctype == "application/octet-stream"
    named = {**request.query_params, **request.path_params}
    request.app.state.repository.refuse_if_full(
        task.model_task, named.get("model"), named.get("version"), exact=raw
    )


def _openapi(task: Task) -> dict[str, Any]:
    path_params = {p.strip("{}") for p in task.path.split("/") if p.startswith("{")}
    extra: dict[str, Any] = {"parameters": option_parameters(task.options, path_params)}
    if task.images != (0, 0):
        body = copy.deepcopy(IMAGE_REQUEST_BODY)
        content = body["requestBody"]["content"]
        for field, schema in task.extra_body_fields.items():
            content["multipart/form-data"]["schema"]["properties"][field] = schema
            content["application/json"]["schema"]["properties"][field] = schema
        extra.update(body)
    return extra
