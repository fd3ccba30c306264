"""``POST /v1/vqa``: one image and one or more questions in, ranked answers out.

Questions come as ``question`` fields (repeat the field for several) in multipart or the query
string, or as ``question``/``questions`` in a JSON body next to ``image`` (base64).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from serving.errors import BadRequest, PayloadTooLarge
from serving.http.docs import IMAGE_REQUEST_BODY
from serving.http.inputs import TaskOptions, parse_options, read_image_request
from serving.http.responses import ORJSONResponse
from serving.tasks.base import Deadline

router = APIRouter(tags=["tasks"])
MAX_QUESTIONS = 64


def _request_body() -> dict[str, Any]:
    """The image request body, plus the questions."""
    body = copy.deepcopy(IMAGE_REQUEST_BODY)
    content = body["requestBody"]["content"]
    content["multipart/form-data"]["schema"]["properties"]["question"] = {
        "type": "array",
        "items": {"type": "string"},
        "description": "one field per question",
    }
    content["application/json"]["schema"]["properties"]["questions"] = {
        "type": "array",
        "items": {"type": "string"},
    }
    return body


class VqaOptions(TaskOptions):
    question: str | list[str] | None = Field(default=None, description="one question or several")
    questions: list[str] | None = Field(default=None, description="several questions")
    top_k: int = Field(default=3, ge=1, le=1000)

    def all_questions(self) -> list[str]:
        one = [self.question] if isinstance(self.question, str) else self.question or []
        return [*one, *(self.questions or [])]


class Label(BaseModel):
    label: str
    class_id: int
    probability: float


class QuestionAnswers(BaseModel):
    question: str
    answers: list[Label] = Field(description="best first")
    unknown_words: int = Field(description="question words outside the model's vocabulary")


class VqaResponse(BaseModel):
    model: str
    version: int
    results: list[QuestionAnswers] = Field(description="one entry per question, in order")


@router.post(
    "/v1/vqa",
    response_model=VqaResponse,
    openapi_extra=_request_body(),
    summary="Answer questions about an image (top-k answers with probabilities)",
)
async def vqa(request: Request) -> ORJSONResponse:
    state = request.app.state
    req = await read_image_request(request, state.settings)
    opts = parse_options(VqaOptions, req.options)
    if len(req.images) != 1:
        raise BadRequest(
            f"send exactly one image per request, got {len(req.images)}", code="one_image_only"
        )
    questions = opts.all_questions()
    if not questions:
        raise BadRequest("no question in the request", code="missing_question")
    if len(questions) > MAX_QUESTIONS:
        raise PayloadTooLarge(
            f"{len(questions)} questions in one request; the limit is {MAX_QUESTIONS}",
            code="too_many_questions",
        )
    deadline = Deadline.after_ms(opts.timeout_ms or state.settings.default_timeout_ms)
    version = state.repository.for_task("vqa", opts.model, opts.version)
    request.state.model = version.name
    results = await version.pipeline(req.images[0], questions, k=opts.top_k, deadline=deadline)
    return ORJSONResponse(
        {
            "model": version.name,
            "version": version.version,
            "results": [
                {
                    "question": r.question,
                    "answers": [p.__dict__ for p in r.answers],
                    "unknown_words": r.unknown_words,
                }
                for r in results
            ],
        }
    )
