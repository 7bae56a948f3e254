"""Errors of the client: nothing answered (``Unreachable``), or the service
answered with an error, raised as the ``ProblemError`` subclass of its HTTP
status with the fields of its problem document (RFC 9457, ``problem+json``)."""

from __future__ import annotations

from typing import Any

import httpx


class DocflowError(Exception):
    """A request could not be carried out; ``str()`` is one line for a person."""


class Unreachable(DocflowError):
    """Nothing answered at the service's address (or the answer broke off)."""


class ProblemError(DocflowError):
    """The service answered with an error status; its problem document's fields.

    ``code`` is docflow's stable, machine-readable reason (``empty-file``,
    ``not-found``, …); ``detail`` says what happened to a person. An answer
    that is not a problem document (a proxy's page) gets its text as ``detail``.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        code: str | None = None,
        *,
        title: str | None = None,
        type: str = "about:blank",
        instance: str | None = None,
        problem: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{detail} (HTTP {status}{f', {code}' if code else ''})")
        self.status = status
        self.detail = detail
        self.code = code
        self.title = title
        self.type = type
        self.instance = instance
        self.problem = problem or {}
        self.retry_after = retry_after


class BadRequest(ProblemError):
    """400: the request is malformed."""


class Unauthorized(ProblemError):
    """401: no API key, or not a valid one."""


class Forbidden(ProblemError):
    """403: the key may not do this."""


class NotFound(ProblemError):
    """404: no such document (or not the caller's tenant's)."""


class Conflict(ProblemError):
    """409: the document's state does not allow the operation now."""


class TooLarge(ProblemError):
    """413: a file or body is over the service's limit."""


class UnsupportedType(ProblemError):
    """415: a file's type is not one docflow reads."""


class Invalid(ProblemError):
    """422: a parameter or file is not valid (an empty file, an unknown status, …)."""


class RateLimited(ProblemError):
    """429: the tenant sent too many requests; wait ``retry_after`` seconds."""


class Unavailable(ProblemError):
    """503: a dependency (Kafka, the database, …) is unavailable; retry later."""


BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    415: UnsupportedType,
    422: Invalid,
    429: RateLimited,
    503: Unavailable,
}


def problem_of(response: httpx.Response) -> ProblemError:
    """The error an answer carries, as the exception class of its status."""
    kind = BY_STATUS.get(response.status_code, ProblemError)
    retry_after = retry_after_of(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("detail"):
        code, title, instance = body.get("code"), body.get("title"), body.get("instance")
        return kind(
            response.status_code,
            str(body["detail"]),
            str(code) if code else None,
            title=str(title) if title else None,
            type=str(body.get("type") or "about:blank"),
            instance=str(instance) if instance else None,
            problem=body,
            retry_after=retry_after,
        )
    text = response.text.strip() or response.reason_phrase
    return kind(response.status_code, text[:500], retry_after=retry_after)


def retry_after_of(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (capped at 30), when the answer has one."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return min(30.0, max(0.0, float(value)))
    except ValueError:
        return 1.0


def unreachable(url: httpx.URL | str, exc: httpx.TransportError) -> Unreachable:
    parsed = httpx.URL(url)
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        reason = f"{reason} (is it running?)"
    return Unreachable(f"cannot reach {parsed.scheme}://{parsed.netloc.decode()}: {reason}")
