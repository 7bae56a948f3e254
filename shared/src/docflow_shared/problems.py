"""Problem documents (RFC 9457 ``application/problem+json``): every docflow error
answer, with a stable ``type`` and ``code`` that clients can branch on, and a
``detail`` a person can act on. Plain Starlette, so that ASGI middleware
(``guards.py``) answers with the same documents as the routes."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"


def problem_type(code: str) -> str:
    """The stable ``type`` URI of a problem code."""
    return f"urn:docflow:problem:{code}"


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = dict(headers or {})
        # An extension without a value is left out.
        self.extensions = {k: v for k, v in extensions.items() if v is not None}


class ProblemDetails(BaseModel):
    """An RFC 9457 problem document, as every docflow error answer is."""

    type: str = Field(description="Stable URI of the problem kind: urn:docflow:problem:<code>")
    title: str
    status: int
    detail: str = Field(description="What went wrong and what to do about it")
    code: str = Field(description="Stable short name of the problem kind")
    instance: str | None = None


def problem_responses(described: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for problem answers, by status code and description."""
    schema = {"$ref": "#/components/schemas/ProblemDetails"}
    return {
        status: {
            "model": ProblemDetails,
            "description": text,
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for status, text in described.items()
    }


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem_type(problem.code),
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "code": problem.code,
        **problem.extensions,
    }
    if instance:
        body["instance"] = instance
    return JSONResponse(
        body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


# nginx's status for a request whose client closed the connection before the
# answer: never seen by that client, it keeps such requests out of the 5xx
# that page someone (deploy/prometheus/alerts.yml) and out of the error logs.
CLIENT_CLOSED = 499


def client_closed() -> Problem:
    """The answer to a request whose client left mid-request (it is not sent)."""
    return Problem(
        CLIENT_CLOSED,
        "client-closed-request",
        "the client closed the connection before the request was complete",
        title="Client Closed Request",
    )
