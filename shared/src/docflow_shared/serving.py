"""A service's app and process, built the same way in every service.

``service_broker`` and ``consumer_app`` make a consumer service's app (the
extractor's, the embedder's): its broker, with /healthz, /readyz and /metrics
beside it (/metrics on a port of its own when the settings give one).
``run`` is a service's ``__main__``: logging as the settings say, a stop
bounded in time (``shutdown.py``), served by uvicorn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from faststream.asgi import AsgiFastStream

from docflow_shared.logs import configure_logging
from docflow_shared.messaging import make_broker
from docflow_shared.probes import Check, asgi_probe_routes, metrics_server
from docflow_shared.settings import ServiceSettings
from docflow_shared.shutdown import App, bounded

if TYPE_CHECKING:
    from faststream.kafka import KafkaBroker
    from prometheus_client import CollectorRegistry

Settings = TypeVar("Settings", bound=ServiceSettings)


def service_broker(
    settings: ServiceSettings, *, service: str, registry: CollectorRegistry
) -> KafkaBroker:
    """The service's broker on the configured Kafka, its metrics in ``registry``;
    on shutdown, in-flight handlers get what the settings' bound leaves them."""
    return make_broker(
        settings.kafka_bootstrap_servers,
        service=service,
        registry=registry,
        graceful_timeout=settings.handler_grace_s,
        security=settings.kafka_security,
    )


def consumer_app(
    broker: KafkaBroker,
    *,
    service: str,
    registry: CollectorRegistry,
    checks: Mapping[str, Check],
    routes: Sequence[tuple[str, Any]] = (),
    after_shutdown: Sequence[Callable[[], Any]] = (),
    metrics_at: tuple[str, int] | None = None,
) -> AsgiFastStream:
    """A consumer service's app: ``broker`` plus /healthz, /readyz (``checks``),
    /metrics (``registry``) and the service's own ``routes``. With ``metrics_at``
    (host, port; ``settings.metrics_address``) /metrics is served there while
    the app runs, and not on the app's own port."""
    app = AsgiFastStream(
        broker,
        logger=logging.getLogger(f"docflow.{service}"),
        asgi_routes=[*asgi_probe_routes(checks, registry, metrics=metrics_at is None), *routes],
        after_shutdown=after_shutdown,
    )
    if metrics_at is not None:
        stops: list[Callable[[], None]] = []

        async def start_metrics() -> None:
            stops.append(metrics_server(registry, *metrics_at))

        async def stop_metrics() -> None:
            while stops:
                stops.pop()()

        app.on_startup(start_metrics)
        app.after_shutdown(stop_metrics)
    return app


def run(
    service: str,
    settings: Settings,
    bootstrap: Callable[[Settings], App],
    serve: Callable[..., object],
    **server_options: Any,
) -> None:
    """Run the service's process: its app from ``bootstrap(settings)``, which exits
    within ``settings.shutdown_timeout_s`` of a SIGTERM, served by ``serve``
    (``uvicorn.run``, which the services depend on) on the settings' host and port."""
    configure_logging(service, settings.log_level, settings.log_format)
    app = bounded(bootstrap(settings), settings.shutdown_timeout_s, service)
    serve(app, host=settings.host, port=settings.port, log_config=None, **server_options)
