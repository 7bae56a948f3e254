"""Forged events (docs/architecture.md, "Trust boundaries"): an event whose tenant,
document and blob key do not belong together is dead-lettered and counted, and
acts on nothing: no file is read, no vector deleted, no document failed."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import BinaryIO

import pytest
from faststream.kafka import KafkaMessage, TestKafkaBroker
from prometheus_client import CollectorRegistry
from qdrant_client import models

from docflow_embedder import bootstrap as embedder
from docflow_embedder.adapters.qdrant import QdrantVectorStore, local_client
from docflow_embedder.domain import FixedIndex
from docflow_embedder.settings import EmbedderSettings
from docflow_extractor.bootstrap import Ports, reading_for, wire
from docflow_extractor.settings import ExtractorSettings
from docflow_shared import topics
from docflow_shared.blobstore import LocalBlobStore
from docflow_shared.events import (
    DocumentDeleted,
    DocumentFailed,
    DocumentIndexed,
    DocumentRetryRequested,
    DocumentUploaded,
    Stage,
    TextExtracted,
)
from docflow_shared.messaging import make_broker
from service.conftest import Collector
from service.test_embedder_wiring import FakeEmbedder, batches
from support.uploads import stored_upload
from support.waiting import await_until


class ReadingBlobs(LocalBlobStore):
    """A local blob store that remembers which keys were opened."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opened: list[str] = []

    def open(self, key: str, *, max_bytes: int | None = None) -> BinaryIO:
        self.opened.append(key)
        return super().open(key, max_bytes=max_bytes)


def rejected(registry: CollectorRegistry, service: str, reason: str) -> float:
    return (
        registry.get_sample_value(
            "docflow_events_rejected_total", {"service": service, "reason": reason}
        )
        or 0.0
    )


def forged_from(secret: DocumentUploaded, kind: str) -> DocumentUploaded | DocumentRetryRequested:
    """globex's event for a document of its own, whose claim check is acme's file."""
    common = {
        "document_id": uuid.uuid4(),
        "tenant_id": "globex",
        "correlation_id": "forged",
        "filename": "mine.md",
        "content_type": secret.content_type,
        "blob_key": secret.blob_key,
    }
    if kind == "retry":
        return DocumentRetryRequested(**common, attempt=2, from_stage=Stage.EXTRACTING)
    return DocumentUploaded(**common, size_bytes=1, sha256="0" * 64)


@pytest.mark.parametrize("kind", ["retry", "upload"])
async def test_an_event_whose_blob_key_is_another_tenants_file_is_dead_lettered_unread(
    real_kafka: str | None, tmp_path: Path, corpus: Path, kind: str
) -> None:
    broker = make_broker(real_kafka or "127.0.0.1:1", service="extractor")
    blobs = ReadingBlobs(tmp_path / "blobs")
    settings = ExtractorSettings(data_dir=tmp_path)
    registry = CollectorRegistry()
    wire(broker, Ports(blobs, reading_for(settings)), settings, registry)
    collector = Collector(broker, topics.EXTRACTED, topics.FAILED, group_id=f"test-{uuid.uuid4()}")
    dead: list[bytes] = []

    markdown = corpus / "markdown" / "004_2fa5e17c5a412ea5.md"
    secret = stored_upload(blobs, markdown, "text/markdown", tenant_id="acme")
    forged = forged_from(secret, kind)

    @broker.subscriber(topics.DEAD_LETTER, group_id=f"test-{uuid.uuid4()}")
    async def keep(message: KafkaMessage) -> None:
        # The topic is shared by the session's tests: only this test's letter.
        if str(forged.document_id).encode() in message.body:
            dead.append(message.body)

    fine = stored_upload(blobs, markdown, "text/markdown", tenant_id="globex")
    collector.document_ids.update({forged.document_id, fine.document_id})
    async with TestKafkaBroker(broker, with_real=real_kafka is not None) as br:
        await br.publish(forged, topic=forged.TOPIC, key=b"one-partition")
        # Behind it on the same partition: once it is extracted, the forged one was handled.
        await br.publish(fine, topic=topics.UPLOADED, key=b"one-partition")
        await await_until(
            lambda: any(b.last for b in collector.of(TextExtracted)) and dead,
            timeout_s=60,
            what="the upload behind the forged event, and the dead letter",
        )
    assert secret.blob_key not in blobs.opened
    assert {e.document_id for e in collector.events} == {fine.document_id}
    assert collector.of(DocumentFailed) == []
    # At least once: a redelivery (a rebalance on the real broker) counts again.
    assert rejected(registry, "extractor", "blob_key") >= 1


def acme_and_globex(document_id: uuid.UUID) -> tuple[list[TextExtracted], list[TextExtracted]]:
    """acme's chunk batches of a document, and globex's forged ones for the same id."""
    acme = [
        b.model_copy(update={"tenant_id": "acme"})
        for b in batches(document_id, ["acme secret a", "acme secret b", "acme secret c"])
    ]
    globex = [
        b.model_copy(update={"tenant_id": "globex", "correlation_id": "forged"})
        for b in batches(document_id, ["forged a", "forged b", "forged c"])
    ]
    return acme, globex


async def test_a_forged_deletion_of_another_tenants_document_deletes_nothing_and_is_counted(
    real_kafka: str | None, tmp_path: Path
) -> None:
    broker = make_broker(real_kafka or "127.0.0.1:1", service="embedder")
    client = local_client(tmp_path / "qdrant")
    vectors = QdrantVectorStore(client, "docflow_fake_2", 2)
    registry = CollectorRegistry()
    embedder.wire(
        broker, embedder.Ports(FixedIndex(FakeEmbedder(), vectors)), EmbedderSettings(), registry
    )
    collector = Collector(broker, topics.INDEXED, topics.FAILED, group_id=f"test-{uuid.uuid4()}")
    document_id = uuid.uuid4()
    collector.document_ids.add(document_id)
    acme, globex = acme_and_globex(document_id)
    # This test's own dead letters: on the session's shared broker, the
    # embedder's group also reads other tests' leftovers, and counts them.
    dead_letters: list[bytes] = []

    @broker.subscriber(
        topics.DEAD_LETTER, group_id=f"test-{uuid.uuid4()}", auto_offset_reset="earliest"
    )
    async def keep(message: KafkaMessage) -> None:
        if str(document_id).encode() in message.body:
            dead_letters.append(message.body)

    async with TestKafkaBroker(broker, with_real=real_kafka is not None) as br:
        for batch in [*acme, *globex]:
            await br.publish(batch, topic=topics.EXTRACTED, key=str(document_id).encode())
        await await_until(
            lambda: {e.tenant_id for e in collector.of(DocumentIndexed)} == {"acme", "globex"},
            timeout_s=60,
            what="both tenants' chunks stored",
        )
        # Both are kept: the tenant is part of every point id.
        assert vectors.stored("acme", document_id, 1) == 3
        assert vectors.stored("globex", document_id, 1) == 3
        forged = DocumentDeleted(
            document_id=document_id, tenant_id="initech", correlation_id="forged"
        )
        await br.publish(forged, topic=topics.DELETED, key=str(document_id).encode())
        await await_until(
            lambda: any(b'"initech"' in body for body in dead_letters),
            timeout_s=60,
            what="the forged deletion dead-lettered",
        )
        assert rejected(registry, "embedder", "tenant_changed") >= 1
        assert vectors.stored("acme", document_id, 1) == 3
        acme_texts = {
            r.payload["text"]
            for r in client.scroll(
                "docflow_fake_2",
                scroll_filter=models.Filter(
                    must=[
                        models.FieldCondition(
                            key="document_id", match=models.MatchValue(value=str(document_id))
                        ),
                        models.FieldCondition(
                            key="tenant_id", match=models.MatchValue(value="acme")
                        ),
                    ]
                ),
                limit=100,
            )[0]
            if r.payload
        }
        assert acme_texts == {"acme secret a", "acme secret b", "acme secret c"}
        # acme's own deletion still takes acme's points, and only those.
        own = DocumentDeleted(document_id=document_id, tenant_id="acme", correlation_id="c")
        await br.publish(own, topic=topics.DELETED, key=str(document_id).encode())
        await await_until(
            lambda: vectors.stored("acme", document_id, 1) == 0,
            timeout_s=60,
            what="acme's deletion applied",
        )
    assert vectors.stored("globex", document_id, 1) == 3
    assert rejected(registry, "embedder", "tenant_changed") >= 1
    assert collector.of(DocumentFailed) == []
    client.close()
