"""Retry, cancel and delete through the running system (the four services as
processes on a real Kafka broker), checked in the status API, on Kafka itself
and in Qdrant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from qdrant_client import models

from docflow_embedder.adapters.embedded import open_embedded
from docflow_embedder.adapters.minilm import MiniLMEmbedder
from docflow_embedder.adapters.qdrant import collection_name
from docflow_local.stack import Stack
from docflow_shared import topics
from docflow_shared.events import (
    DocumentIndexed,
    DocumentProgressed,
    Event,
    Stage,
)
from docflow_shared.kafka_admin import read_topic
from support.corpus import CORRUPT, REPO_ROOT, expectations
from support.stacks import BlobPlace, readable_events, running_stack
from support.waiting import wait_until

LONG_PDF = "GeoTopo-komprimiert.pdf"


@pytest.fixture(scope="module")
def blobs() -> BlobPlace:
    """The local store only: on S3 this module took 5 more minutes (the long PDF
    is embedded twice), and what it asks of the blob store (chunks stored and
    sent again, deletion) runs on S3 in test_cli.py and
    tests/integration/test_extractor_on_s3.py."""
    return BlobPlace()


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, blobs: BlobPlace
) -> Iterator[Stack]:
    with running_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("operations") / "data",
        REPO_ROOT / ".artifacts" / "e2e" / "logs" / "operations" / blobs.kind,
        blobs=blobs,
        # One chunk batch per model call, so a long document shows its embedding
        # progress batch by batch and can be cancelled part-way (with polls of
        # many batches it may go from 0 to indexed in one step).
        extra_env={"DOCFLOW_MAX_BATCHES_PER_CALL": "1"},
    ) as running:
        yield running


def _corpus_file(name: str) -> bytes:
    return next(e.path for e in expectations() if e.path.name == name).read_bytes()


def _upload(http: httpx.Client, stack: Stack, name: str, data: bytes) -> dict[str, Any]:
    response = http.post(f"{stack.url('gateway')}/v1/documents", files={"file": (name, data)})
    assert response.status_code == 202, response.text
    document: dict[str, Any] = response.json()["documents"][0]
    return document


def _status(http: httpx.Client, document: dict[str, Any]) -> dict[str, Any] | None:
    response = http.get(document["status_url"])
    return response.json() if response.status_code == 200 else None


def _until(http: httpx.Client, document: dict[str, Any], condition: Any, what: str) -> Any:
    def probe() -> dict[str, Any] | None:
        status = _status(http, document)
        return status if status is not None and condition(status) else None

    return wait_until(probe, timeout_s=300, interval_s=0.2, what=what)


def _events_of(stack: Stack, topic: str, document_id: str) -> list[Event]:
    values = asyncio.run(read_topic(stack.kafka_bootstrap_servers, topic))
    events = readable_events(values)
    return [e for e in events if str(e.document_id) == document_id]


def _operate(http: httpx.Client, stack: Stack, method: str, path: str) -> httpx.Response:
    return http.request(method, f"{stack.url('gateway')}/v1/documents/{path}")


@pytest.fixture(scope="module")
def long_document(stack: Stack, http: httpx.Client) -> dict[str, Any]:
    """The long PDF, cancelled while it was being embedded after its extraction
    ended, then retried to completion."""
    document = _upload(http, stack, LONG_PDF, _corpus_file(LONG_PDF))
    # Embedding starts while the extractor still cuts pages; chunks_total is
    # known once the extraction ended, and only then are all chunks stored.
    _until(
        http,
        document,
        lambda s: s["chunks_total"] is not None and s["chunks_embedded"] > 0,
        "embedding under way, the extraction ended",
    )

    cancel = _operate(http, stack, "POST", f"{document['id']}/cancel")
    assert cancel.status_code == 202, cancel.text
    assert cancel.json()["attempt"] == 1
    cancelled = _until(http, document, lambda s: s["status"] == "cancelled", "cancelled")
    document["cancelled"] = cancelled
    assert _operate(http, stack, "POST", f"{document['id']}/cancel").status_code == 409

    retry = _operate(http, stack, "POST", f"{document['id']}/retry")
    assert retry.status_code == 202, retry.text
    assert retry.json()["attempt"] == 2
    document["completed"] = _until(
        http,
        document,
        lambda s: s["attempt"] == 2 and s["status"] in ("completed", "failed"),
        "the retry finishes",
    )
    return document


def test_a_cancelled_attempt_stops_before_its_end(
    stack: Stack, long_document: dict[str, Any]
) -> None:
    cancelled = long_document["cancelled"]
    assert cancelled["message"].startswith("Cancelled")
    assert cancelled["progress"] < 100
    # On Kafka: the embedder stopped attempt 1 part-way, and never indexed it.
    embedded_1 = [
        e.done
        for e in _events_of(stack, topics.PROGRESSED, long_document["id"])
        if isinstance(e, DocumentProgressed) and e.stage is Stage.EMBEDDING and e.attempt == 1
    ]
    total = long_document["completed"]["chunks_total"]
    assert max(embedded_1) < total
    indexed = _events_of(stack, topics.INDEXED, long_document["id"])
    assert [e.attempt for e in indexed if isinstance(e, DocumentIndexed)] == [2]


def test_a_retry_completes_the_document_from_its_stored_chunks(
    stack: Stack, long_document: dict[str, Any]
) -> None:
    completed = long_document["completed"]
    assert (completed["status"], completed["progress"], completed["error"]) == (
        "completed",
        100,
        None,
    )
    assert completed["chunks_embedded"] == completed["chunks_total"] > 300
    # Resumed at embedding: the file was not extracted again (no page progress
    # for attempt 2), its stored chunks were sent again.
    extracting_2 = [
        e
        for e in _events_of(stack, topics.PROGRESSED, long_document["id"])
        if isinstance(e, DocumentProgressed) and e.stage is Stage.EXTRACTING and e.attempt == 2
    ]
    assert {e.total for e in extracting_2} == {1}


def test_a_failed_document_is_retried_and_fails_again_with_its_reason(
    stack: Stack, http: httpx.Client
) -> None:
    name = sorted(CORRUPT)[0]
    document = _upload(http, stack, name, _corpus_file(name))
    first = _until(http, document, lambda s: s["status"] == "failed", "the first failure")
    assert first["error"]["code"] == "corrupt"

    retry = _operate(http, stack, "POST", f"{document['id']}/retry")
    assert retry.status_code == 202
    again = _until(
        http, document, lambda s: s["attempt"] == 2 and s["status"] == "failed", "the second"
    )
    assert again["error"]["code"] == "corrupt"


def test_a_deleted_document_is_gone_everywhere(
    stack: Stack, http: httpx.Client, long_document: dict[str, Any], blobs: BlobPlace
) -> None:
    document_id = long_document["id"]

    def stored() -> set[str]:
        return {key for key in blobs.stored(stack) if key.startswith(f"default/{document_id}/")}

    assert stored() == {f"default/{document_id}/original", f"default/{document_id}/chunks.jsonl"}

    response = _operate(http, stack, "DELETE", document_id)
    assert response.status_code == 202
    wait_until(lambda: _status(http, long_document) is None, timeout_s=60, what="status 404")
    assert http.get(long_document["status_url"]).json()["code"] == "document-not-found"
    assert stored() == set()
    if blobs.s3 is None:  # nor the document's folder
        assert not (stack.data_dir / "blobs" / "default" / document_id).exists()
    assert _operate(http, stack, "POST", f"{document_id}/retry").status_code == 404

    # The embedded store admits one process: read it once the services are stopped.
    stack.stop()
    client = open_embedded(stack.data_dir / "qdrant")
    try:
        count = client.count(
            collection_name(MiniLMEmbedder.model, 384),
            count_filter=models.Filter(
                must=[
                    models.FieldCondition(
                        key="document_id", match=models.MatchValue(value=document_id)
                    )
                ]
            ),
        ).count
    finally:
        client.close()
    assert count == 0
