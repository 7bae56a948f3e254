"""An OTLP/HTTP trace receiver for the tests: what the services export when
``OTEL_EXPORTER_OTLP_ENDPOINT`` points at it, decoded with opentelemetry-proto."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from support.threaded import serving


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int  # 2 server, 3 client, 4 producer, 5 consumer (OTLP's SpanKind)
    trace_id: str
    span_id: str
    parent_id: str
    links: tuple[tuple[str, str], ...]  # (trace id, span id)
    attributes: dict[str, str]


SERVER, PRODUCER, CONSUMER = 2, 4, 5


@dataclass
class Collector:
    spans: list[Span] = field(default_factory=list)
    url: str = ""

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/traces")
        async def traces(request: Request) -> Response:
            export = ExportTraceServiceRequest.FromString(await request.body())
            for resource in export.resource_spans:
                service = next(
                    (
                        a.value.string_value
                        for a in resource.resource.attributes
                        if a.key == "service.name"
                    ),
                    "?",
                )
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        self.spans.append(
                            Span(
                                service=service,
                                name=span.name,
                                kind=span.kind,
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_id=span.parent_span_id.hex(),
                                links=tuple(
                                    (link.trace_id.hex(), link.span_id.hex()) for link in span.links
                                ),
                                attributes={
                                    a.key: str(a.value.string_value or a.value.int_value)
                                    for a in span.attributes
                                },
                            )
                        )
            return Response(
                ExportTraceServiceResponse().SerializeToString(),
                media_type="application/x-protobuf",
            )

        return app


@contextmanager
def otlp_collector() -> Iterator[Collector]:
    """A ``Collector`` listening on 127.0.0.1 for the duration."""
    collector = Collector()
    with serving(collector.app(), "the test OTLP collector") as port:
        collector.url = f"http://127.0.0.1:{port}"
        yield collector
