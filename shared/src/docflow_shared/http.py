"""HTTP pieces shared by the gateway and the status service (FastAPI).

Every error answer is an RFC 9457 ``application/problem+json`` document with a
stable ``type`` and ``code`` that clients can branch on, and a ``detail`` a
person can act on. Needs the ``http`` extra (FastAPI).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from docflow_shared.auth import Authenticator
from docflow_shared.guards import TENANT_KEY, RequestGuard, tenant_of
from docflow_shared.probes import Check, metrics_server, readiness
from docflow_shared.problems import (
    PROBLEM_JSON,
    Problem,
    ProblemDetails,
    client_closed,
    problem_response,
    problem_responses,
    problem_type,
)
from docflow_shared.telemetry import tracer_provider

__all__ = [
    "PROBLEM_JSON",
    "Problem",
    "ProblemDetails",
    "Tenant",
    "problem_response",
    "problem_responses",
    "problem_type",
    "service_app",
]

logger = logging.getLogger(__name__)

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


def install_problem_handlers(app: FastAPI, disconnects: Counter | None = None) -> None:
    """Make every error of ``app`` a problem document, never an HTML or bare 500;
    a client that left mid-request is 499, counted in ``disconnects``."""

    @app.exception_handler(ClientDisconnect)
    async def _client_left(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # Not our error: no stack trace, no 5xx (the answer is never received).
        logger.info("client left during %s %s", request.method, request.url.path)
        if disconnects is not None:
            disconnects.labels(request.method).inc()
        return problem_response(client_closed(), request.url.path)

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


_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key (or send it as a Bearer token)"
)
_bearer = HTTPBearer(auto_error=False, description="An API key as a Bearer token")


async def _caller_tenant(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> str:
    # The security schemes above document the two ways to send a key; the
    # caller was authenticated from the headers before its body was read
    # (guards.RequestGuard), or is here when a route is outside /v1/.
    found: str | None = request.scope.get(TENANT_KEY)
    if found is not None:
        return found
    return tenant_of(request.app.state.authenticator, request.headers)


Tenant = Annotated[str, Depends(_caller_tenant)]
"""The calling tenant (a route parameter); answers 401 when auth is on and the key is unknown."""


def probe_router(
    checks: Mapping[str, Check], registry: CollectorRegistry, *, metrics: bool = True
) -> APIRouter:
    """``/healthz``, ``/readyz`` and (with ``metrics``) ``/metrics`` for a FastAPI service."""
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

    if metrics:

        @router.get("/metrics")
        async def exposition() -> Response:
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
    authenticator: Authenticator,
    max_body_bytes: int,
    streamed_bodies: Collection[tuple[str, str]] = (),
    lifespan: Lifespan | None = None,
    service: str = "",
    metrics_at: tuple[str, int] | None = None,
) -> FastAPI:
    """A docflow HTTP service: its routes, problem responses, probes, metrics and
    traces (``service`` names it in them). Each API request is authenticated
    before its body is read, and its body is at most ``max_body_bytes``, except
    on the routes ``streamed_bodies`` (method, path) that count their own. With
    ``metrics_at`` (host, port) /metrics is served there while the app runs, and
    not on the app's own port."""
    if not authenticator.enabled:
        logger.warning(
            "authentication is off: every request belongs to tenant %r "
            "(set DOCFLOW_AUTH_ENABLED=true and DOCFLOW_API_KEYS to turn it on)",
            authenticator.default_tenant,
        )

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        stop_metrics = metrics_server(registry, *metrics_at) if metrics_at else None
        try:
            if lifespan is None:
                yield
                return
            async with lifespan():
                yield
        finally:
            if stop_metrics is not None:
                stop_metrics()

    app = FastAPI(title=title, version="1", summary=summary, lifespan=run)
    app.state.authenticator = authenticator
    # Inside the metrics middleware (added next), so that its 401s and 413s count.
    app.add_middleware(
        RequestGuard,
        authenticator=authenticator,
        max_body_bytes=max_body_bytes,
        streamed_bodies=streamed_bodies,
    )
    # http_requests_total{handler,method,status}, http_request_duration_seconds
    # {handler,method} …: by route template (never a document id), probes and
    # /metrics left out; a status stream counts until its headers are sent.
    Instrumentator(
        registry=registry,
        excluded_handlers=["^/metrics$", "^/healthz$", "^/readyz$"],
        should_exclude_streaming_duration=True,
    ).instrument(app)
    # A span per request; FastStream's middleware carries it into Kafka.
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider(service or title),
        excluded_urls="healthz,readyz,metrics",
        exclude_spans=["receive", "send"],  # one span per request, not per ASGI message
    )
    install_problem_handlers(
        app,
        Counter(
            "http_client_disconnects",
            "Requests whose client closed the connection before the answer (answered 499)",
            ["method"],
            registry=registry,
        ),
    )
    app.include_router(router)
    app.include_router(probe_router(checks, registry, metrics=metrics_at is None))
    return app
