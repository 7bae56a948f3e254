"""The status API's problems (RFC 9457 bodies) shared by its routers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

from docflow_shared.http import Problem, problem_responses

T = TypeVar("T")

UNAUTHORIZED = "Authentication is on and no valid API key was sent"
_NOT_FOUND = "No such document for this tenant"
DOCUMENT_PROBLEMS = problem_responses({401: UNAUTHORIZED, 404: _NOT_FOUND})
# Every route may answer it (deps.rate_limited, a dependency of the whole API).
RATE_LIMITED = problem_responses(
    {
        429: "The tenant sent more than DOCFLOW_RATE_LIMIT requests, or has as many "
        "streams open as DOCFLOW_MAX_STREAMS_PER_TENANT allows; see Retry-After"
    }
)


def _not_found(document_id: str) -> Problem:
    return Problem(
        404,
        "document-not-found",
        f"no document {document_id!r}; use the status_url the upload answered with "
        "(a document appears here within moments of its upload being accepted)",
    )


async def found(document_id: str, lookup: Callable[[UUID], Awaitable[T | None]]) -> tuple[UUID, T]:
    """The id and what ``lookup`` finds for it; 404 for a malformed id or nothing found."""
    try:
        parsed = UUID(document_id)
    except ValueError:
        raise _not_found(document_id) from None
    value = await lookup(parsed)
    if value is None:
        raise _not_found(document_id)
    return parsed, value
