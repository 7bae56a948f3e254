"""Traces and structured logs (issue 8): an upload's trace from its HTTP request
through Kafka into every consumer, exported over OTLP to a test collector; and
JSON log lines naming the document, the correlation id and the trace."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from docflow_local.stack import Stack
from support.corpus import REPO_ROOT, expectations
from support.openai_server import EmbeddingsServer
from support.otlp import CONSUMER, PRODUCER, SERVER, Collector, Span, otlp_collector
from support.stacks import running_stack

pytestmark = pytest.mark.e2e

LOGS = REPO_ROOT / ".artifacts" / "e2e" / "logs" / "telemetry"
# FastStream's span attribute holding the message's correlation id.
CONVERSATION = "messaging.message.conversation_id"


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    with otlp_collector() as running:
        yield running


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    server: EmbeddingsServer,
    collector: Collector,
) -> Iterator[Stack]:
    with running_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("telemetry") / "data",
        LOGS,
        extra_env={
            **server.embedder_env(),
            "DOCFLOW_LOG_FORMAT": "json",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            # Export at once rather than every 5 s.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        },
    ) as running:
        yield running


@pytest.fixture(scope="module")
def upload(stack: Stack, collector: Collector) -> dict[str, str]:
    """One PDF uploaded with a correlation id, followed to completed."""
    path = next(e.path for e in expectations() if e.path.name == "minimal-document.pdf")
    correlation = f"telemetry-{uuid.uuid4()}"
    with httpx.Client(timeout=30) as http:
        answer = http.post(
            f"{stack.url('gateway')}/v1/documents?dedup=false",
            files={"file": (path.name, path.read_bytes())},
            headers={"X-Correlation-ID": correlation},
        )
        assert answer.status_code == 202, answer.text
        document = answer.json()["documents"][0]
        deadline = time.monotonic() + 60
        while http.get(document["status_url"]).json()["status"] != "completed":
            assert time.monotonic() < deadline, "the document did not complete"
            time.sleep(0.3)
    time.sleep(2)  # the last spans' export
    return {"id": document["id"], "correlation": correlation}


def _one(spans: list[Span], what: str) -> Span:
    assert len(spans) == 1, f"{what}: {len(spans)} spans"
    return spans[0]


def _spans(
    spans: list[Span], service: str, *, kind: int | None = None, name: str | None = None
) -> list[Span]:
    """The spans of ``docflow-<service>``, of that kind and name when given."""
    return [
        s
        for s in spans
        if s.service == f"docflow-{service}"
        and (kind is None or s.kind == kind)
        and (name is None or s.name == name)
    ]


def _the_upload(collector: Collector, correlation: str) -> tuple[Span, Span]:
    """The gateway's publish of the upload, and the request span it is a child of."""
    spans = [s for s in collector.spans if s.attributes.get(CONVERSATION) == correlation]
    publish = _one(
        _spans(spans, "gateway", kind=PRODUCER, name="docflow.document.uploaded.v1 create"),
        "the gateway publishing the upload",
    )
    request = next(s for s in collector.spans if s.span_id == publish.parent_id)
    return publish, request


def _log_line(service: str, message_start: str, document_id: str) -> dict[str, Any]:
    for line in (LOGS / f"{service}.log").read_text().splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record["message"].startswith(message_start) and record["document_id"] == document_id:
            return record  # type: ignore[no-any-return]
    raise AssertionError(f"{service}: no JSON line {message_start!r} for {document_id}")


def test_an_uploads_trace_goes_from_its_request_through_every_consumer(
    upload: dict[str, str], collector: Collector
) -> None:
    spans = [s for s in collector.spans if s.attributes.get(CONVERSATION) == upload["correlation"]]
    # The gateway: the request's span, and the upload's publish inside it.
    publish, request = _the_upload(collector, upload["correlation"])
    assert (request.service, request.kind, request.name) == (
        "docflow-gateway",
        SERVER,
        "POST /v1/documents",
    )
    trace = request.trace_id
    # The extractor consumes it as a child, in the same trace, and publishes in it.
    extract = _one(_spans(spans, "extractor", kind=CONSUMER), "the extractor consuming the upload")
    assert (extract.trace_id, extract.parent_id) == (trace, publish.span_id)
    extracted = _spans(spans, "extractor", name="docflow.document.extracted.v1 create")
    assert extracted
    assert {s.trace_id for s in extracted} == {trace}
    # The embedder takes chunk batches of several documents per poll: its span
    # links to each message's context (OpenTelemetry's batch receive).
    embed = _one(
        _spans(spans, "embedder", kind=CONSUMER, name="docflow.document.extracted.v1 create"),
        "the embedder receiving the chunk batch",
    )
    assert {(s.trace_id, s.span_id) for s in extracted} <= set(embed.links)
    indexed = _one(
        _spans(spans, "embedder", name="docflow.document.indexed.v1 create"),
        "the embedder announcing the document indexed",
    )
    assert indexed.trace_id == embed.trace_id
    # The status service's projector links to the events it projected. One of its
    # spans covers a batch, which may hold other documents' events too, and
    # FastStream keeps one link per correlation id in a batch (its last message's,
    # in partition order, not time): which of this document's events are linked
    # depends on how they fell into batches, so the test asks for a link to at
    # least one of them. Spans leave in batches, so the last may still be on its
    # way: look at all, and wait.
    created = {
        (s.trace_id, s.span_id) for s in spans if s.kind == PRODUCER and s.name.endswith(" create")
    }
    assert {(publish.trace_id, publish.span_id), (indexed.trace_id, indexed.span_id)} <= created
    deadline = time.monotonic() + 30
    while True:
        projected = _spans(list(collector.spans), "status", kind=CONSUMER)
        linked = {link for s in projected for link in s.links}
        if linked & created or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert linked & created, "the status service links to none of the document's events"


def test_log_lines_name_the_document_the_request_and_the_trace(
    upload: dict[str, str], collector: Collector
) -> None:
    extracted = _log_line("extractor", "extracted document", upload["id"])
    assert extracted["correlation_id"] == upload["correlation"]
    _, request = _the_upload(collector, upload["correlation"])
    assert extracted["trace_id"] == request.trace_id
    indexed = _log_line("embedder", "indexed document", upload["id"])
    assert indexed["correlation_id"] == upload["correlation"]
    embed_traces = {s.trace_id for s in _spans(collector.spans, "embedder")}
    assert indexed["trace_id"] in embed_traces
    for record in (extracted, indexed):
        assert {"time", "service", "level", "logger", "message", "span_id"} <= set(record)
