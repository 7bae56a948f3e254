"""Every replica learns of cancellations and deletions, on the in-memory and the real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
from faststream.kafka import TestKafkaBroker

from docflow_shared.cancellations import Cancellations, follow_cancellations
from docflow_shared.events import DocumentCancelled, DocumentDeleted
from docflow_shared.kafka_admin import ensure_topics, read_records
from docflow_shared.messaging import make_broker
from docflow_shared.topics import STOPS_CONFIG, TopicSpec
from support.waiting import await_until


async def test_cancellations_and_deletions_are_remembered(real_kafka: str | None) -> None:
    cancellations = Cancellations()
    broker = make_broker(real_kafka or "127.0.0.1:1", service="test")
    follow_cancellations(broker, cancellations)
    cancelled, deleted = uuid.uuid4(), uuid.uuid4()
    envelope = {"tenant_id": "t1", "correlation_id": "c"}
    async with TestKafkaBroker(broker, with_real=real_kafka is not None) as br:
        for event in (
            DocumentCancelled(document_id=cancelled, attempt=2, **envelope),
            DocumentDeleted(document_id=deleted, **envelope),
        ):
            await br.publish(event, topic=event.TOPIC, key=str(event.document_id).encode())
        await await_until(
            lambda: (
                cancellations.deleted("t1", deleted) and cancellations.cancelled("t1", cancelled, 2)
            ),
            timeout_s=60,
            what="both are known",
        )
    assert cancellations.cancelled("t1", cancelled, 2)
    assert cancellations.cancelled("t1", cancelled, 1)
    assert not cancellations.cancelled("t1", cancelled, 3)  # a retry after the cancel goes on
    assert cancellations.cancelled("t1", deleted, 99)
    assert not cancellations.deleted("t1", cancelled)


def test_a_cancellation_or_deletion_under_another_tenant_stops_nothing_of_the_document() -> None:
    # A forged DocumentDeleted (globex's tenant, acme's document id) must not stop
    # or discard acme's work on the document.
    cancellations = Cancellations()
    document = uuid.uuid4()
    envelope = {"document_id": document, "correlation_id": "forged", "tenant_id": "globex"}
    cancellations.record(DocumentDeleted(**envelope))
    cancellations.record(DocumentCancelled(**envelope, attempt=3))
    assert not cancellations.deleted("acme", document)
    assert not cancellations.cancelled("acme", document, 1)
    assert cancellations.deleted("globex", document)


# Compaction as soon as the broker's cleaner looks (every 15 s): segments of
# 100 ms, any superseded record worth cleaning, nothing kept for its age.
CLEAN_NOW = {"segment.ms": "100", "min.cleanable.dirty.ratio": "0.01", "min.compaction.lag.ms": "0"}


async def _stop_topics(bootstrap: str, **config: str) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    names = (f"test.cancelled.{suffix}", f"test.deleted.{suffix}")
    await ensure_topics(bootstrap, [TopicSpec(n, 1, 1, {**STOPS_CONFIG, **config}) for n in names])
    return names


async def _publish(
    bootstrap: str, events: list[DocumentCancelled | DocumentDeleted], to: dict
) -> None:
    async with make_broker(bootstrap, service="test") as broker:
        for event in events:
            await broker.publish(event, topic=to[type(event)], key=event.kafka_key)


async def _replica(
    bootstrap: str, names: tuple[str, str], until: Callable[[Cancellations], bool]
) -> Cancellations:
    """A replica started afresh: what it knows once ``until`` holds (and a moment after)."""
    cancellations = Cancellations()
    broker = make_broker(bootstrap, service="test")
    follow_cancellations(broker, cancellations, names=names)
    async with broker:
        await broker.start()
        await await_until(lambda: until(cancellations), timeout_s=60, what="the replica caught up")
        await asyncio.sleep(1)  # anything more it would read
    return cancellations


@pytest.mark.integration
async def test_a_replica_starting_reads_each_documents_latest_record_not_the_history(
    kafka_bootstrap: str,
) -> None:
    cancelled_topic, deleted_topic = await _stop_topics(kafka_bootstrap, **CLEAN_NOW)
    to = {DocumentCancelled: cancelled_topic, DocumentDeleted: deleted_topic}
    documents = [uuid.uuid4() for _ in range(40)]
    acme = {"tenant_id": "acme", "correlation_id": "c"}
    # Forty documents cancelled in each of ten attempts, ten deleted twice: 420 records.
    history: list[DocumentCancelled | DocumentDeleted] = [
        DocumentCancelled(document_id=d, attempt=a, **acme) for a in range(1, 11) for d in documents
    ]
    history += [DocumentDeleted(document_id=d, **acme) for d in documents[:10]] * 2
    # Another tenant's record about the same document id has a key of its own.
    forged = DocumentCancelled(
        document_id=documents[0], attempt=99, tenant_id="globex", correlation_id="f"
    )
    await _publish(kafka_bootstrap, [*history, forged], to)
    await asyncio.sleep(0.3)
    # One record more rolls each topic's segment, so the cleaner may compact the rest.
    last = [
        DocumentCancelled(document_id=uuid.uuid4(), **acme),
        DocumentDeleted(document_id=uuid.uuid4(), **acme),
    ]
    await _publish(kafka_bootstrap, last, to)

    async def kept() -> int | None:
        count = 0
        for name in (cancelled_topic, deleted_topic):
            count += len(await read_records(kafka_bootstrap, name))
        return count if count == 40 + 1 + 10 + 2 else None

    # Forty latest cancellations, the forged one, ten deletions and the two last ones.
    retained = await await_until(kept, timeout_s=120, interval_s=1, what="compaction")

    replica = await _replica(
        kafka_bootstrap,
        (cancelled_topic, deleted_topic),
        lambda c: (
            all(c.cancelled("acme", d, 10) for d in documents) and c.deleted("acme", documents[9])
        ),
    )
    assert replica.records_read == retained == 53  # not 420
    assert not replica.cancelled("acme", documents[20], 11)  # a retry after the cancel goes on
    assert replica.deleted("acme", documents[0])
    assert not replica.deleted("acme", documents[10])
    assert replica.cancelled("globex", documents[0], 99)
    assert not replica.cancelled("acme", documents[10], 99)


@pytest.mark.integration
async def test_a_cancellation_sent_while_a_replica_is_down_applies_when_it_starts(
    kafka_bootstrap: str,
) -> None:
    names = await _stop_topics(kafka_bootstrap)
    to = dict(zip((DocumentCancelled, DocumentDeleted), names, strict=True))
    acme = {"tenant_id": "acme", "correlation_id": "c"}
    before, cancelled, deleted = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await _publish(kafka_bootstrap, [DocumentCancelled(document_id=before, **acme)], to)
    first = await _replica(kafka_bootstrap, names, lambda c: c.cancelled("acme", before, 1))
    assert not first.cancelled("acme", cancelled, 1)
    # The replica is stopped; the gateway goes on.
    await _publish(
        kafka_bootstrap,
        [
            DocumentCancelled(document_id=cancelled, attempt=2, **acme),
            DocumentDeleted(document_id=deleted, **acme),
        ],
        to,
    )
    again = await _replica(
        kafka_bootstrap,
        names,
        lambda c: c.cancelled("acme", cancelled, 2) and c.deleted("acme", deleted),
    )
    assert again.cancelled("acme", before, 1)
    assert not again.cancelled("acme", cancelled, 3)
    assert again.records_read == 3
