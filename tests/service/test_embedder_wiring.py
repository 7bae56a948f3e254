"""The embedder's subscriber, middleware and publisher, wired as in production,
with a fake model and an in-memory vector store (the real ones are in e2e)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest
from faststream.kafka import TestKafkaBroker

from docflow_embedder.bootstrap import Ports, wire
from docflow_embedder.domain import FixedIndex, VectorPoint
from docflow_embedder.settings import EmbedderSettings
from docflow_shared import topics
from docflow_shared.events import (
    Chunk,
    DocumentFailed,
    DocumentIndexed,
    DocumentProgressed,
    TextExtracted,
)
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.messaging import make_broker
from docflow_shared.topics import specs
from service.conftest import Collector
from support.waiting import await_until


class FakeEmbedder:
    model = "fake/model"
    dimension = 2

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        if any("explode" in t for t in texts):
            raise RuntimeError("model crashed")
        return np.ones((len(texts), 2), dtype=np.float32)


class MemoryVectors:
    collection = "docflow_fake_2"

    def __init__(self) -> None:
        self.points: dict[str, VectorPoint] = {}

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        self.points.update({str(p.id): p for p in points})

    def delete_document(self, tenant_id: str, document_id: uuid.UUID) -> None:
        self.points = {
            k: p
            for k, p in self.points.items()
            if (p.payload["tenant_id"], p.payload["document_id"]) != (tenant_id, str(document_id))
        }

    def owned_by_another_tenant(self, tenant_id: str, document_id: uuid.UUID) -> bool:
        tenants = {
            p.payload["tenant_id"]
            for p in self.points.values()
            if p.payload["document_id"] == str(document_id)
        }
        return bool(tenants) and tenant_id not in tenants

    def stored(self, tenant_id: str, document_id: uuid.UUID, attempt: int) -> int:
        return sum(
            1
            for p in self.points.values()
            if p.payload["document_id"] == str(document_id) and p.payload["attempt"] == attempt
        )


def batches(document_id: uuid.UUID, texts: list[str]) -> list[TextExtracted]:
    common = {"document_id": document_id, "tenant_id": "t1", "correlation_id": "c"}
    chunks = [Chunk(index=i, text=t, char_start=0, char_end=len(t)) for i, t in enumerate(texts)]
    return [
        TextExtracted(**common, batch=0, chunks=chunks[:2], last=False),
        TextExtracted(**common, batch=1, chunks=chunks[2:], last=True, chunks_total=len(chunks)),
    ]


async def test_chunk_batches_become_points_and_the_document_is_indexed(
    real_kafka: str | None,
) -> None:
    broker = make_broker(real_kafka or "127.0.0.1:1", service="embedder")
    vectors = MemoryVectors()
    wire(broker, Ports(FixedIndex(FakeEmbedder(), vectors)), EmbedderSettings())
    collector = Collector(
        broker, topics.PROGRESSED, topics.INDEXED, group_id=f"test-{uuid.uuid4()}"
    )
    document_id = uuid.uuid4()
    collector.document_ids.add(document_id)
    async with TestKafkaBroker(broker, with_real=real_kafka is not None) as br:
        for batch in batches(document_id, ["a", "b", "c"]):
            await br.publish(batch, topic=topics.EXTRACTED, key=str(document_id).encode())

        async def indexed() -> list[DocumentIndexed]:
            return collector.of(DocumentIndexed)

        [done] = await await_until(indexed, timeout_s=60, what="DocumentIndexed")
    assert done.chunks_total == 3
    assert len(vectors.points) == 3
    assert [p.done for p in collector.of(DocumentProgressed)] == [2, 3]


async def test_a_model_error_fails_the_document_as_retryable(real_kafka: str | None) -> None:
    broker = make_broker(real_kafka or "127.0.0.1:1", service="embedder")
    wire(broker, Ports(FixedIndex(FakeEmbedder(), MemoryVectors())), EmbedderSettings())
    collector = Collector(broker, topics.FAILED, group_id=f"test-{uuid.uuid4()}")
    document_id = uuid.uuid4()
    collector.document_ids.add(document_id)
    async with TestKafkaBroker(broker, with_real=real_kafka is not None) as br:
        first, _ = batches(document_id, ["explode", "b", "c"])
        await br.publish(first, topic=topics.EXTRACTED, key=str(document_id).encode())

        async def failed() -> list[DocumentFailed]:
            return collector.of(DocumentFailed)

        [failure] = await await_until(failed, timeout_s=60, what="DocumentFailed")
    assert failure.error.code == "internal"
    assert failure.error.stage == "embedding"
    assert failure.error.retryable is True
    assert "model crashed" in failure.error.message


async def published_first(bootstrap: str, events: list[TextExtracted]) -> None:
    """Put events on Kafka before the embedder starts, so that one poll returns many."""
    producer = make_broker(bootstrap, service="test")
    await producer.start()
    try:
        for event in events:
            await producer.publish(event, topic=event.TOPIC, key=str(event.document_id).encode())
    finally:
        await producer.stop()


@pytest.mark.integration
async def test_small_documents_waiting_together_share_a_model_call(kafka_bootstrap: str) -> None:
    await ensure_topics(kafka_bootstrap, specs())
    documents = [uuid.uuid4() for _ in range(6)]
    await published_first(
        kafka_bootstrap,
        [b for d in documents for b in batches(d, [f"{d} a", f"{d} b", f"{d} c"])],
    )
    broker = make_broker(kafka_bootstrap, service="embedder")
    model, vectors = FakeEmbedder(), MemoryVectors()
    wire(broker, Ports(FixedIndex(model, vectors)), EmbedderSettings())
    collector = Collector(broker, topics.INDEXED, group_id=f"test-{uuid.uuid4()}")
    collector.document_ids |= set(documents)
    async with TestKafkaBroker(broker, with_real=True):
        await await_until(
            lambda: len(collector.of(DocumentIndexed)) == len(documents) or None,
            timeout_s=60,
            what="every document indexed",
        )
    # (Batches other tests left on the shared broker may be embedded too: count ours.)
    ours = {str(d) for d in documents}
    stored = [p for p in vectors.points.values() if p.payload["document_id"] in ours]
    assert len(stored) == 3 * len(documents)
    calls = [[t for t in call if t.split()[0] in ours] for call in model.calls]
    calls = [call for call in calls if call]
    # Fewer model calls than chunk batches: some call took several documents' chunks.
    assert len(calls) < 2 * len(documents)
    assert max(len({text.split()[0] for text in call}) for call in calls) > 1


@pytest.mark.integration
async def test_a_document_that_cannot_be_embedded_fails_alone(kafka_bootstrap: str) -> None:
    await ensure_topics(kafka_bootstrap, specs())
    bad, good = uuid.uuid4(), [uuid.uuid4(), uuid.uuid4()]
    await published_first(
        kafka_bootstrap,
        [
            *batches(good[0], ["a", "b", "c"]),
            *batches(bad, ["explode", "b", "c"]),
            *batches(good[1], ["d", "e", "f"]),
        ],
    )
    broker = make_broker(kafka_bootstrap, service="embedder")
    wire(broker, Ports(FixedIndex(FakeEmbedder(), MemoryVectors())), EmbedderSettings())
    collector = Collector(broker, topics.INDEXED, topics.FAILED, group_id=f"test-{uuid.uuid4()}")
    collector.document_ids |= {bad, *good}
    async with TestKafkaBroker(broker, with_real=True):
        await await_until(
            lambda: len(collector.of(DocumentIndexed)) == 2 and collector.of(DocumentFailed),
            timeout_s=60,
            what="two indexed, one failed",
        )
    assert {e.document_id for e in collector.of(DocumentIndexed)} == set(good)
    [failure] = collector.of(DocumentFailed)
    assert failure.document_id == bad
    assert "model crashed" in failure.error.message
