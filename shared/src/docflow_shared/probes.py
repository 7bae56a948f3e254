"""Liveness and readiness, the same for every service.

``/healthz`` says only that the process is alive and never checks a
dependency (so an orchestrator never restarts a service because Kafka is
slow). ``/readyz`` runs the service's dependency checks. ``/metrics`` is on
the service's port, or on a port of its own (``metrics_server``,
``DOCFLOW_METRICS_PORT``) that only Prometheus needs to reach.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from faststream.asgi import AsgiResponse, get
from prometheus_client import make_asgi_app, start_http_server

if TYPE_CHECKING:
    from faststream.kafka import KafkaBroker
    from prometheus_client import CollectorRegistry

Check = Callable[[], Awaitable[None]]
"""A readiness check: returns when the dependency answers, raises otherwise."""

CHECK_TIMEOUT_S = 3.0


async def readiness(checks: Mapping[str, Check]) -> tuple[bool, dict[str, str]]:
    """Run every check (concurrently, each bounded in time); report each result."""

    async def run(check: Check) -> str:
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return "ok"

    results = await asyncio.gather(*(run(check) for check in checks.values()))
    detail = dict(zip(checks, results, strict=True))
    return all(result == "ok" for result in results), detail


def kafka_check(broker: KafkaBroker) -> Check:
    """Ready when the broker answers a metadata request."""

    async def check() -> None:
        if not await broker.ping(timeout=CHECK_TIMEOUT_S):
            raise ConnectionError("Kafka did not answer")

    return check


def metrics_server(registry: CollectorRegistry, host: str, port: int) -> Callable[[], None]:
    """Serve ``registry``'s exposition on ``host:port`` (any path, ``/metrics`` the
    one scraped) from a thread of this process; returns what stops it. A port
    already taken is an error naming the setting, at start."""
    try:
        server, thread = start_http_server(port, host, registry)
    except OSError as exc:
        raise OSError(
            f"cannot serve metrics on {host}:{port} (DOCFLOW_METRICS_PORT): {exc}"
        ) from exc

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop


def asgi_probe_routes(
    checks: Mapping[str, Check], registry: CollectorRegistry, *, metrics: bool = True
) -> list[tuple[str, Any]]:
    """``/healthz``, ``/readyz`` and (with ``metrics``) ``/metrics`` for an
    ``AsgiFastStream`` consumer app."""
    json_headers = {"content-type": "application/json"}

    @get(include_in_schema=False)
    async def healthz(scope: Any) -> AsgiResponse:
        return AsgiResponse(b'{"status":"ok"}', 200, headers=json_headers)

    @get(include_in_schema=False)
    async def readyz(scope: Any) -> AsgiResponse:
        ok, detail = await readiness(checks)
        body = json.dumps({"status": "ok" if ok else "unavailable", "checks": detail})
        return AsgiResponse(body.encode(), 200 if ok else 503, headers=json_headers)

    routes: list[tuple[str, Any]] = [("/healthz", healthz), ("/readyz", readyz)]
    return [*routes, ("/metrics", make_asgi_app(registry))] if metrics else routes
