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

from docflow_extractor.bootstrap import Ports, reading_for, wire
from docflow_extractor.settings import ExtractorSettings
from docflow_shared import topics
from docflow_shared.blobstore import LocalBlobStore
from docflow_shared.events import (
    DocumentFailed,
    DocumentRetryRequested,
    DocumentUploaded,
    Stage,
    TextExtracted,
)
from docflow_shared.messaging import make_broker
from service.conftest import Collector
from support.uploads import stored_upload
from support.waiting import await_until


class ReadingBlobs(LocalBlobStore):
    """A local blob store that remembers which keys were opened."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opened: list[str] = []

    def open(self, key: str) -> BinaryIO:
        self.opened.append(key)
        return super().open(key)


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

    @broker.subscriber(topics.DEAD_LETTER, group_id=f"test-{uuid.uuid4()}")
    async def keep(message: KafkaMessage) -> None:
        dead.append(message.body)

    markdown = corpus / "markdown" / "004_2fa5e17c5a412ea5.md"
    secret = stored_upload(blobs, markdown, "text/markdown", tenant_id="acme")
    forged = forged_from(secret, kind)
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
    assert len(dead) == 1
    assert str(forged.document_id).encode() in dead[0]
    assert rejected(registry, "extractor", "blob_key") == 1
