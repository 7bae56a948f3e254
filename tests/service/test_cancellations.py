"""Every replica learns of cancellations and deletions, on the in-memory and the real broker."""

from __future__ import annotations

import uuid

from faststream.kafka import TestKafkaBroker

from docflow_shared.cancellations import Cancellations, follow_cancellations
from docflow_shared.events import DocumentCancelled, DocumentDeleted
from docflow_shared.messaging import make_broker
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
