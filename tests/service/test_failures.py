"""Transient errors, retry topics and the dead-letter topic, on the real broker: the
embedder's wiring as in production, with a vector store that is unavailable for a
while, and messages nobody can read."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaConsumer
from faststream.kafka import TestKafkaBroker
from prometheus_client import CollectorRegistry

from docflow_embedder.bootstrap import Ports, wire
from docflow_embedder.domain import FixedIndex, VectorPoint
from docflow_embedder.settings import EmbedderSettings
from docflow_shared import retries, topics
from docflow_shared.events import (
    DocumentDeleted,
    DocumentFailed,
    DocumentIndexed,
    DocumentRetrying,
    TextExtracted,
)
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.messaging import cloudevent_headers, make_broker
from docflow_shared.topics import specs
from service.conftest import Collector
from service.test_embedder_wiring import FakeEmbedder, MemoryVectors, batches
from support.waiting import await_until

pytestmark = pytest.mark.integration

DELAYS = [0.3, 0.6, 0.9]


class FlakyVectors(MemoryVectors):
    """Unavailable for the chunks of ``down`` documents, ``failures`` times each
    (forever when negative)."""

    def __init__(self, down: dict[uuid.UUID, int]) -> None:
        super().__init__()
        self.down = down
        self.refused = 0

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        for point in points:
            document = uuid.UUID(point.payload["document_id"])
            left = self.down.get(document, 0)
            if left:
                self.down[document] = left - 1
                self.refused += 1
                raise ConnectionError("Qdrant: connection refused")
        super().upsert(points)


async def dead_letters(bootstrap: str, document_ids: set[str]) -> list[tuple[bytes, dict]]:
    consumer = AIOKafkaConsumer(
        topics.DEAD_LETTER, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        found = []
        for records in (await consumer.getmany(timeout_ms=3000)).values():
            for record in records:
                headers = {k: v.decode() for k, v in record.headers}
                if (record.key or b"").decode() in document_ids:
                    found.append((record.value, headers))
        return found
    finally:
        await consumer.stop()


async def test_a_batch_that_meets_an_outage_is_retried_while_others_go_on(
    kafka_bootstrap: str,
) -> None:
    await ensure_topics(kafka_bootstrap, specs())
    flaky, steady = uuid.uuid4(), uuid.uuid4()
    vectors = FlakyVectors({flaky: 2})  # its first batch fails twice
    broker = make_broker(kafka_bootstrap, service="embedder")
    wire(
        broker, Ports(FixedIndex(FakeEmbedder(), vectors)), EmbedderSettings(retry_delays_s=DELAYS)
    )
    collector = Collector(
        broker, topics.INDEXED, topics.RETRYING, topics.FAILED, group_id=f"test-{uuid.uuid4()}"
    )
    collector.document_ids |= {flaky, steady}
    async with TestKafkaBroker(broker, with_real=True) as br:
        for document_id in (flaky, steady):
            for batch in batches(document_id, ["a", "b", "c"]):
                await br.publish(batch, topic=topics.EXTRACTED, key=str(document_id).encode())

        async def both_indexed() -> set[uuid.UUID] | None:
            done = {e.document_id for e in collector.of(DocumentIndexed)}
            return done if done == {flaky, steady} else None

        await await_until(both_indexed, timeout_s=60, what="both documents indexed")
        await asyncio.sleep(1.5)  # anything announced twice would be here by now

    retrying = [e for e in collector.of(DocumentRetrying) if e.document_id == flaky]
    # Two refusals: of one batch twice (retry 1, 2), of each batch once (1, 1), or
    # of a poll of both and then of one of them alone (1). A last batch that
    # found chunks missing waited for them.
    refused = [e.retry for e in retrying if "connection refused" in e.reason]
    waited = [e.retry for e in retrying if "not stored yet" in e.reason]
    assert sorted(refused) in ([1], [1, 1], [1, 2])
    assert len(refused) + len(waited) == len(retrying)
    assert all(e.retries == 3 for e in retrying)
    assert all(e.stage == "embedding" for e in retrying)
    assert not [e for e in collector.of(DocumentRetrying) if e.document_id == steady]
    # Indexed once each (the same id if announced twice), every chunk stored once.
    indexed = collector.of(DocumentIndexed)
    assert len({e.event_id for e in indexed if e.document_id == flaky}) == 1
    assert all(e.chunks_total == 3 for e in indexed)
    assert vectors.stored("t1", flaky, 1) == vectors.stored("t1", steady, 1) == 3
    assert collector.of(DocumentFailed) == []
    assert vectors.refused == 2


async def test_an_outage_longer_than_every_retry_dead_letters_and_fails_the_document(
    kafka_bootstrap: str,
) -> None:
    await ensure_topics(kafka_bootstrap, specs())
    doomed = uuid.uuid4()
    broker = make_broker(kafka_bootstrap, service="embedder")
    registry = CollectorRegistry()
    wire(
        broker,
        Ports(FixedIndex(FakeEmbedder(), FlakyVectors({doomed: -1}))),
        EmbedderSettings(retry_delays_s=DELAYS),
        registry,
    )
    collector = Collector(broker, topics.RETRYING, topics.FAILED, group_id=f"test-{uuid.uuid4()}")
    collector.document_ids.add(doomed)
    first, _ = batches(doomed, ["a", "b", "c"])
    async with TestKafkaBroker(broker, with_real=True) as br:
        await br.publish(
            first,
            topic=topics.EXTRACTED,
            key=str(doomed).encode(),
            headers=cloudevent_headers(first, "/docflow/extractor"),
        )

        async def failed() -> list[DocumentFailed]:
            return collector.of(DocumentFailed)

        [failure] = await await_until(failed, timeout_s=60, what="DocumentFailed")

    assert [e.retry for e in collector.of(DocumentRetrying)] == [1, 2, 3]
    assert failure.error.retryable is True
    assert failure.error.stage == "embedding"
    assert failure.error.message == (
        "ConnectionError: Qdrant: connection refused (gave up after 3 retries)"
    )
    [(body, headers)] = await dead_letters(kafka_bootstrap, {str(doomed)})
    assert TextExtracted.model_validate_json(body) == first
    assert headers[retries.ORIGINAL_TOPIC] == topics.EXTRACTED
    assert headers[retries.RETRIES] == "3"
    assert headers[retries.SERVICE] == "embedder"
    assert headers[retries.STAGE] == "embedding"
    assert "connection refused" in headers[retries.ERROR]
    assert headers["ce_type"] == "docflow.document.extracted"  # the original headers stay
    # The metrics count them: three retries, one dead letter.
    assert registry.get_sample_value("docflow_retries_total", {"stage": "embedding"}) == 3
    assert registry.get_sample_value("docflow_dead_letters_total", {"stage": "embedding"}) == 1


@pytest.mark.parametrize(
    ("topic", "poison"),
    [
        (topics.EXTRACTED, b"\x00not json{"),
        (topics.DELETED, b'{"event_type": "docflow.document.deleted", "missing": "fields"}'),
    ],
    ids=["extracted-not-json", "deleted-no-envelope"],
)
async def test_a_message_nobody_can_read_is_dead_lettered_and_the_consumer_goes_on(
    kafka_bootstrap: str, topic: str, poison: bytes
) -> None:
    await ensure_topics(kafka_bootstrap, specs())
    after = uuid.uuid4()
    poison_key = str(uuid.uuid4())
    broker = make_broker(kafka_bootstrap, service="embedder")
    vectors = MemoryVectors()
    wire(
        broker, Ports(FixedIndex(FakeEmbedder(), vectors)), EmbedderSettings(retry_delays_s=DELAYS)
    )
    collector = Collector(broker, topics.INDEXED, group_id=f"test-{uuid.uuid4()}")
    collector.document_ids.add(after)
    async with TestKafkaBroker(broker, with_real=True) as br:
        await br.publish(poison, topic=topic, key=poison_key.encode())
        for batch in batches(after, ["a", "b", "c"]):
            await br.publish(batch, topic=topics.EXTRACTED, key=str(after).encode())

        async def indexed() -> bool:
            return bool(collector.of(DocumentIndexed))

        await await_until(indexed, timeout_s=60, what="the next document indexed")
        if topic == topics.DELETED:
            # The deletions that follow the poison on its topic are still carried out.
            await br.publish(
                DocumentDeleted(document_id=after, tenant_id="t1", correlation_id="c"),
                topic=topics.DELETED,
                key=poison_key.encode(),  # the poison's partition
            )

            async def removed() -> bool:
                return not vectors.points

            await await_until(removed, timeout_s=60, what="the next deletion carried out")

    [(body, headers)] = await dead_letters(kafka_bootstrap, {poison_key})
    assert body == poison
    assert headers[retries.ERROR].startswith("unreadable message: ")
    assert headers[retries.RETRIES] == "0"
    assert headers[retries.ORIGINAL_TOPIC] == topic


async def test_an_event_of_an_unknown_schema_version_is_dead_lettered_and_fails_its_document(
    kafka_bootstrap: str,
) -> None:
    await ensure_topics(kafka_bootstrap, specs())
    future = uuid.uuid4()
    first, _ = batches(future, ["a", "b", "c"])
    body = first.model_dump_json().replace('"schema_version":1', '"schema_version":2').encode()
    broker = make_broker(kafka_bootstrap, service="embedder")
    wire(
        broker,
        Ports(FixedIndex(FakeEmbedder(), MemoryVectors())),
        EmbedderSettings(retry_delays_s=DELAYS),
    )
    collector = Collector(broker, topics.FAILED, group_id=f"test-{uuid.uuid4()}")
    collector.document_ids.add(future)
    async with TestKafkaBroker(broker, with_real=True) as br:
        await br.publish(body, topic=topics.EXTRACTED, key=str(future).encode())

        async def failed() -> list[DocumentFailed]:
            return collector.of(DocumentFailed)

        [failure] = await await_until(failed, timeout_s=60, what="DocumentFailed")
    assert failure.error.retryable is False
    assert "could not read the event" in failure.error.message
    [(kept, headers)] = await dead_letters(kafka_bootstrap, {str(future)})
    assert kept == body
    assert "schema_version" in headers[retries.ERROR]
