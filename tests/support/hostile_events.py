"""Hostile events for the fault suite (issue 20, finding 8): poison pills, garbage
headers and forged cross-tenant events, published straight to the topics while
documents flow.

* Poison: what no consumer can handle (100 KB of ``[`` on every document
  topic, a ``DocumentProgressed`` with ``done = 10**20``, a tenant id longer
  than the read model's column, non-numeric ``docflow-retries`` /
  ``docflow-due-ms`` headers on the retry topics and on document topics).
  Each must end up on the dead-letter topic, and must block nothing.
* Forged: well-formed events about real documents that another tenant could
  publish (a ``DocumentRetryRequested`` for a globex document whose
  ``blob_key`` is an acme file, a ``TextExtracted`` and a ``DocumentDeleted``
  claiming an acme document for globex, a ``DocumentCancelled`` of an acme
  document, a ``DocumentUploaded`` for globex of an acme file). They must have
  no effect on the other tenant's documents, vectors or search.

Each message carries a marker (``MARKER_HEADER``, its key, and in a JSON body
its ``correlation_id``) by which it is found again on the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from aiokafka import AIOKafkaProducer

from docflow_shared import retries, topics
from docflow_shared.blobstore import original_key
from docflow_shared.events import (
    Chunk,
    DocumentCancelled,
    DocumentDeleted,
    DocumentRetryRequested,
    DocumentUploaded,
    Event,
    Stage,
    TextExtracted,
)
from docflow_shared.kafka_admin import read_records

MARKER_HEADER = "docflow-test-hostile"
# 100 KB of "[": the decoder recurses once per bracket.
DEEP = b"[" * 100_000
# What only acme's own files say: found anywhere but in acme's documents, it leaked.
ACME_SECRET = "acmesecretledger"
GLOBEX_SECRET = "globexsecretledger"
FORGED_TEXT = "forgedbyglobex chunk text"

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class Hostile:
    """One message published straight to a topic."""

    kind: str  # "poison" or "forged"
    name: str
    topic: str
    body: bytes
    headers: Headers = ()
    marker: str = field(default_factory=lambda: str(uuid4()))
    # For a forged event: the legitimate document it acts on (None for those that
    # only read another tenant's file: their effect is a leak into search).
    victim: UUID | None = None

    def all_headers(self) -> list[tuple[str, bytes]]:
        return [(MARKER_HEADER, self.marker.encode()), *self.headers]


def secret_markdown(secret: str, n: int) -> bytes:
    """A small Markdown file of one tenant, its secret word in every paragraph."""
    paragraphs = [
        f"Paragraph {i} of ledger {n}: the {secret} entry records what only this "
        f"tenant may read, line {i}, with the {secret} reference number {n * 100 + i}."
        for i in range(12)
    ]
    return (f"# Ledger {n} ({secret})\n\n" + "\n\n".join(paragraphs) + "\n").encode()


def _json(event: Event) -> bytes:
    return event.model_dump_json().encode()


def _envelope(marker: str, tenant: str, document_id: UUID | None = None) -> dict[str, Any]:
    return {
        "document_id": document_id or uuid4(),
        "tenant_id": tenant,
        "correlation_id": f"hostile-{marker}",
    }


def poison_pills() -> list[Hostile]:
    """What no consumer can handle; each must be dead-lettered (and block nothing)."""
    pills = [Hostile("poison", f"100 KB of '[' on {topic}", topic, DEEP) for topic in topics.ALL]
    marker = str(uuid4())
    progressed = {
        "event_type": "docflow.document.progressed",
        **{k: str(v) for k, v in _envelope(marker, "acme").items()},
        "stage": Stage.EXTRACTING.value,
        "done": 10**20,
        "total": 10**20,
    }
    pills.append(
        Hostile(
            "poison",
            "DocumentProgressed with done = 10**20",
            topics.PROGRESSED,
            json.dumps(progressed).encode(),
            marker=marker,
        )
    )
    marker = str(uuid4())
    long_tenant = "t" * 200
    document_id = uuid4()
    uploaded = {
        "event_type": "docflow.document.uploaded",
        **{k: str(v) for k, v in _envelope(marker, long_tenant, document_id).items()},
        "filename": "long-tenant.md",
        "content_type": "text/markdown",
        "size_bytes": 10,
        "sha256": "0" * 64,
        "blob_key": original_key(long_tenant, document_id),
    }
    pills.append(
        Hostile(
            "poison",
            "DocumentUploaded with a 200-character tenant id",
            topics.UPLOADED,
            json.dumps(uploaded).encode(),
            marker=marker,
        )
    )
    garbage: Headers = (
        (retries.RETRIES, b"many"),
        (retries.DUE_MS, b"soon"),
        (retries.ORIGINAL_PARTITION, b"-"),
        (retries.ORIGINAL_OFFSET, b"x"),
        (retries.ERROR, b"\xff\xfe\xfd not utf-8"),
    )
    unreadable = b'{"event_type": "docflow.document.garbage", "garbage": true}'
    # The retry topics, each with headers saying where the message came from.
    first_topic = {
        "extractor": topics.UPLOADED,
        "embedder": topics.EXTRACTED,
        "ocr": topics.OCR_REQUESTED,
    }
    for service in topics.RETRYING_SERVICES:
        for level in range(topics.RETRY_LEVELS):
            pills.append(
                Hostile(
                    "poison",
                    f"non-numeric docflow-retries/-due-ms on {topics.retry_topic(service, level)}",
                    topics.retry_topic(service, level),
                    unreadable,
                    ((retries.ORIGINAL_TOPIC, first_topic[service].encode()), *garbage),
                )
            )
    # Garbage headers on document topics: dead-lettering must not read them as numbers.
    for topic in (topics.UPLOADED, topics.EXTRACTED, topics.DELETED):
        pills.append(
            Hostile("poison", f"non-numeric docflow-retries on {topic}", topic, unreadable, garbage)
        )
    return pills


def forged_retry(globex_document: UUID, acme_document: UUID) -> Hostile:
    """A retry of a globex document whose claim check is an acme file."""
    marker = str(uuid4())
    event = DocumentRetryRequested(
        **_envelope(marker, "globex", globex_document),
        attempt=2,
        from_stage=Stage.EXTRACTING,
        filename="ledger.md",
        content_type="text/markdown",
        blob_key=original_key("acme", acme_document),
    )
    return Hostile(
        "forged",
        f"DocumentRetryRequested of globex {globex_document} reading acme's {acme_document}",
        topics.RETRIED,
        _json(event),
        marker=marker,
    )


def forged_upload(acme_document: UUID) -> Hostile:
    """A new globex document whose claim check is an acme file."""
    marker = str(uuid4())
    event = DocumentUploaded(
        **_envelope(marker, "globex"),
        filename="ledger.md",
        content_type="text/markdown",
        size_bytes=100,
        sha256="0" * 64,
        blob_key=original_key("acme", acme_document),
    )
    return Hostile(
        "forged",
        f"DocumentUploaded for globex reading acme's {acme_document}",
        topics.UPLOADED,
        _json(event),
        marker=marker,
    )


def forged_chunks(acme_document: UUID) -> Hostile:
    """A chunk batch claiming an acme document for globex (the same point ids)."""
    marker = str(uuid4())
    event = TextExtracted(
        **_envelope(marker, "globex", acme_document),
        batch=0,
        chunks=[Chunk(index=0, text=FORGED_TEXT, char_start=0, char_end=len(FORGED_TEXT))],
        last=True,
        chunks_total=1,
    )
    return Hostile(
        "forged",
        f"TextExtracted of acme's {acme_document} for globex",
        topics.EXTRACTED,
        _json(event),
        marker=marker,
        victim=acme_document,
    )


def _forged_command(
    kind: type[DocumentDeleted] | type[DocumentCancelled], acme_document: UUID
) -> Hostile:
    """globex's deletion or cancel of an acme document."""
    marker = str(uuid4())
    event = kind(**_envelope(marker, "globex", acme_document))
    return Hostile(
        "forged",
        f"{kind.__name__} of acme's {acme_document} by globex",
        kind.TOPIC,
        _json(event),
        marker=marker,
        victim=acme_document,
    )


def forged_delete(acme_document: UUID) -> Hostile:
    return _forged_command(DocumentDeleted, acme_document)


def forged_cancel(acme_document: UUID) -> Hostile:
    return _forged_command(DocumentCancelled, acme_document)


async def _publish(bootstrap: str, messages: Iterable[Hostile]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=2 * 1024 * 1024
    )
    await producer.start()
    try:
        for message in messages:
            await producer.send_and_wait(
                message.topic,
                message.body,
                key=message.marker.encode(),
                headers=message.all_headers(),
            )
    finally:
        await producer.stop()


def publish(bootstrap: str, messages: Iterable[Hostile]) -> None:
    """Publish raw bytes, acknowledged by every in-sync replica (retried while the
    broker is briefly unavailable)."""
    asyncio.run(_publish(bootstrap, list(messages)))


def dead_lettered(bootstrap: str, messages: Iterable[Hostile]) -> tuple[dict[str, list[str]], int]:
    """For each message (by marker): the services that dead-lettered it (empty: none);
    and how many messages the dead-letter topic holds in all."""
    found: dict[str, list[str]] = {m.marker: [] for m in messages}
    records = asyncio.run(read_records(bootstrap, topics.DEAD_LETTER))
    for record in records:
        headers = dict(record.headers or ())
        marker = headers.get(MARKER_HEADER, b"").decode(errors="replace")
        if marker not in found:
            key = (record.key or b"").decode(errors="replace")
            marker = key if key in found else ""
        if not marker:
            body = record.value or b""
            marker = next((m for m in found if m.encode() in body), "")
        if marker:
            service = headers.get(retries.SERVICE, b"?").decode(errors="replace")
            found[marker].append(service)
    return found, len(records)
