"""Problems (RFC 9457 answers) that several of the gateway's routes give."""

from __future__ import annotations

from docflow_shared.http import Problem

# Seconds a client should wait before retrying when Kafka is unavailable.
RETRY_AFTER_S = 5


def unavailable(what: str, exc: Exception) -> Problem:
    """503: ``what`` did not answer, nothing was done."""
    return Problem(
        503,
        "unavailable",
        f"{what} is unavailable ({exc}); nothing was done, send the request again",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
