"""Traces from an HTTP request through Kafka into every consumer, and log lines that
say which document, request and trace they belong to.

* Spans: FastAPI's instrumentation opens one per request (``http.service_app``);
  FastStream's telemetry middleware (``messaging.make_broker``) one per publish
  and per consume, and carries the context in each message's ``traceparent``
  header, so an upload's trace continues in the extractor, the embedder and the
  status service.
* Export is optional: with ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set, spans go there over OTLP/HTTP,
  configured by the standard ``OTEL_*`` variables; without, they only give
  log lines their trace ids.
* Log context: ``LogContext`` (a consumer middleware) puts the message's
  document (``ce_subject``) and correlation id (``ce_correlationid``) in
  context variables for the handler's duration; ``logs.configure_logging``
  writes them, and the current trace and span ids, into every record.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from faststream import BaseMiddleware
from faststream.message import StreamMessage
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

document_id: ContextVar[str | None] = ContextVar("docflow_document_id", default=None)
correlation_id: ContextVar[str | None] = ContextVar("docflow_correlation_id", default=None)

_providers: dict[str, TracerProvider] = {}


def tracer_provider(service: str) -> TracerProvider:
    """The process's tracer provider for ``service`` (made once), exporting over OTLP
    when an endpoint is configured."""
    if service not in _providers:
        provider = TracerProvider(resource=Resource.create({"service.name": f"docflow-{service}"}))
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        ):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _providers[service] = provider
    return _providers[service]


def current_ids() -> tuple[str | None, str | None]:
    """The current trace and span ids (hex), if a span is recording."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


@contextmanager
def log_context(*, document: str | None, correlation: str | None) -> Iterator[None]:
    """Log records made inside the block name this document and correlation id."""
    tokens = (document_id.set(document), correlation_id.set(correlation))
    try:
        yield
    finally:
        document_id.reset(tokens[0])
        correlation_id.reset(tokens[1])


class LogContext(BaseMiddleware):
    """Consumer middleware: the message's document and correlation id for the log
    records of its handling (from its CloudEvents headers; none for a batch)."""

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        if isinstance(msg.raw_message, tuple):  # a batch: each handler names its own
            return await call_next(msg)
        headers = msg.headers if isinstance(msg.headers, dict) else {}
        with log_context(
            document=headers.get("ce_subject"), correlation=headers.get("ce_correlationid")
        ):
            return await call_next(msg)
