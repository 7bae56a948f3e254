"""HTTP pieces shared by the gateway and the status service (FastAPI).

Every error answer is an RFC 9457 ``application/problem+json`` document with a
stable ``type`` and ``code`` that clients can branch on, and a ``detail`` a
person can act on. Needs the ``http`` extra (FastAPI).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from docflow_shared.probes import Check, readiness

logger = logging.getLogger(__name__)

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
        self.extensions = extensions


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


_CODES_BY_STATUS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "too-large",
    415: "unsupported-media-type",
    422: "malformed-request",
    429: "rate-limited",
    503: "unavailable",
}


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` a problem document, never an HTML or bare 500."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": list(map(str, err.get("loc", ()))), "message": err.get("msg", "")}
            for err in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['location'])}: {e['message']}" for e in errors)
        problem = Problem(422, "malformed-request", detail or "malformed request", errors=errors)
        return problem_response(problem, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES_BY_STATUS.get(exc.status_code, f"http-{exc.status_code}")
        problem = Problem(exc.status_code, code, str(exc.detail), headers=exc.headers)
        return problem_response(problem, request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        problem = Problem(500, "internal", "an unexpected error occurred; it has been logged")
        return problem_response(problem, request.url.path)


def probe_router(checks: Mapping[str, Check], registry: CollectorRegistry) -> APIRouter:
    """``/healthz``, ``/readyz`` and ``/metrics`` for a FastAPI service."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive; no dependency is checked."""
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        """Every dependency answers."""
        ok, detail = await readiness(checks)
        body = {"status": "ok" if ok else "unavailable", "checks": detail}
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        """Prometheus exposition."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


Lifespan = Callable[[], AbstractAsyncContextManager[None]]
"""Starts what a service needs (its Kafka client, database) and stops it after."""


def service_app(
    *,
    title: str,
    summary: str,
    router: APIRouter,
    checks: Mapping[str, Check],
    registry: CollectorRegistry,
    lifespan: Lifespan | None = None,
) -> FastAPI:
    """A docflow HTTP service: its routes, problem responses, probes and metrics."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        if lifespan is None:
            yield
            return
        async with lifespan():
            yield

    app = FastAPI(title=title, version="1", summary=summary, lifespan=run)
    install_problem_handlers(app)
    app.include_router(router)
    app.include_router(probe_router(checks, registry))
    return app
