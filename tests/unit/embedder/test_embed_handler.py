"""The embedder's handler with a fake model and an in-memory vector store."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID, uuid4

import numpy as np
import numpy.typing as npt

from docflow_embedder.domain import VectorPoint, point_id
from docflow_embedder.handlers import embed_chunks
from docflow_shared.events import (
    Chunk,
    DocumentIndexed,
    DocumentProgressed,
    Event,
    Stage,
    TextExtracted,
)


class FakeEmbedder:
    model = "fake/model"
    dimension = 3

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)


class MemoryVectors:
    collection = "docflow_fake_3"

    def __init__(self) -> None:
        self.points: dict[str, VectorPoint] = {}
        self.counted: list[UUID] = []

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        for point in points:
            self.points[str(point.id)] = point

    def stored(self, tenant_id: str, document_id: UUID, attempt: int) -> int:
        self.counted.append(document_id)
        return sum(
            1
            for p in self.points.values()
            if p.payload["document_id"] == str(document_id) and p.payload["attempt"] == attempt
        )


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)


DOC = uuid4()


def batch(
    number: int, first: int, count: int, *, last: bool = False, total: int | None = None
) -> TextExtracted:
    return TextExtracted(
        document_id=DOC,
        tenant_id="t1",
        correlation_id="c",
        batch=number,
        chunks=[
            Chunk(index=i, text=f"chunk {i}", page=1, page_end=2, char_start=0, char_end=7)
            for i in range(first, first + count)
        ],
        last=last,
        chunks_total=total,
    )


async def test_a_batch_becomes_points_and_progress() -> None:
    embedder, vectors, publish = FakeEmbedder(), MemoryVectors(), Recorder()
    await embed_chunks(batch(0, 0, 3), embedder=embedder, vectors=vectors, publish=publish)
    assert embedder.calls == [["chunk 0", "chunk 1", "chunk 2"]]
    assert set(vectors.points) == {str(point_id("t1", DOC, i, "fake/model")) for i in range(3)}
    point = vectors.points[str(point_id("t1", DOC, 1, "fake/model"))]
    assert point.payload == {
        "tenant_id": "t1",
        "document_id": str(DOC),
        "chunk_index": 1,
        "page": 1,
        "page_end": 2,
        "char_start": 0,
        "char_end": 7,
        "text": "chunk 1",
        "title": None,
        "headings": [],
        "attempt": 1,
    }
    [progress] = publish.events
    assert isinstance(progress, DocumentProgressed)
    assert (progress.stage, progress.done, progress.total) == (Stage.EMBEDDING, 3, None)


async def test_each_chunk_is_embedded_with_its_title_and_headings_and_stored_as_written() -> None:
    embedder, vectors, publish = FakeEmbedder(), MemoryVectors(), Recorder()
    titled = Chunk(
        index=0,
        text="The enzyme was labelled with [3H]inositol.",
        page=None,
        char_start=0,
        char_end=42,
        title="Lithium and the brain",
        headings=("Methods", "Labelling"),
    )
    event = batch(0, 0, 0, last=True, total=1).model_copy(update={"chunks": [titled]})
    await embed_chunks(event, embedder=embedder, vectors=vectors, publish=publish)
    assert embedder.calls == [
        [
            "Lithium and the brain › Methods › Labelling\n\n"
            "The enzyme was labelled with [3H]inositol."
        ]
    ]
    [point] = vectors.points.values()
    assert point.payload["text"] == titled.text
    assert point.payload["title"] == "Lithium and the brain"
    assert point.payload["headings"] == ["Methods", "Labelling"]


async def test_the_last_batch_indexes_the_document() -> None:
    vectors, publish = MemoryVectors(), Recorder()
    await embed_chunks(batch(0, 0, 2), embedder=FakeEmbedder(), vectors=vectors, publish=publish)
    await embed_chunks(
        batch(1, 2, 1, last=True, total=3),
        embedder=FakeEmbedder(),
        vectors=vectors,
        publish=publish,
    )
    assert [type(e) for e in publish.events] == [
        DocumentProgressed,
        DocumentProgressed,
        DocumentIndexed,
    ]
    indexed = publish.events[-1]
    assert isinstance(indexed, DocumentIndexed)
    assert (indexed.chunks_total, indexed.collection, indexed.embedding_model) == (
        3,
        "docflow_fake_3",
        "fake/model",
    )
    assert len(vectors.points) == 3


async def test_the_last_of_several_batches_counts_what_is_stored() -> None:
    vectors, publish = MemoryVectors(), Recorder()
    # The first batch has not arrived: the document is not complete.
    await embed_chunks(
        batch(1, 2, 1, last=True, total=3),
        embedder=FakeEmbedder(),
        vectors=vectors,
        publish=publish,
    )
    assert vectors.counted == [DOC]
    assert not any(isinstance(e, DocumentIndexed) for e in publish.events)


async def test_a_document_in_one_batch_is_indexed_without_counting() -> None:
    vectors, publish = MemoryVectors(), Recorder()
    await embed_chunks(
        batch(0, 0, 3, last=True, total=3),
        embedder=FakeEmbedder(),
        vectors=vectors,
        publish=publish,
    )
    assert vectors.counted == []
    assert [type(e) for e in publish.events] == [DocumentProgressed, DocumentIndexed]
    assert len(vectors.points) == 3


async def test_a_redelivered_batch_overwrites_instead_of_duplicating() -> None:
    vectors = MemoryVectors()
    for _ in range(2):
        await embed_chunks(
            batch(0, 0, 4), embedder=FakeEmbedder(), vectors=vectors, publish=Recorder()
        )
    assert len(vectors.points) == 4


async def test_a_document_without_text_is_indexed_without_calling_the_model() -> None:
    embedder, vectors, publish = FakeEmbedder(), MemoryVectors(), Recorder()
    await embed_chunks(
        batch(0, 0, 0, last=True, total=0), embedder=embedder, vectors=vectors, publish=publish
    )
    assert embedder.calls == []
    assert vectors.points == {}
    [indexed] = publish.events
    assert isinstance(indexed, DocumentIndexed)
    assert indexed.chunks_total == 0


def test_point_ids_depend_on_tenant_document_chunk_and_model() -> None:
    a = point_id("t1", DOC, 0, "m1")
    assert a == point_id("t1", DOC, 0, "m1")
    others = {
        point_id("t1", DOC, 1, "m1"),
        point_id("t1", DOC, 0, "m2"),
        point_id("t1", uuid4(), 0, "m1"),
        # The same document id under another tenant (forged) is another point.
        point_id("t2", DOC, 0, "m1"),
    }
    assert len({a, *others}) == 5


async def test_a_forged_batch_under_another_tenant_cannot_make_the_real_indexed_events_id() -> None:
    """The status service keeps one copy of an event id; a forged globex batch for t1's
    document must not publish an event that takes the real one's place."""
    ids = []
    for tenant in ("t1", "globex"):
        publish = Recorder()
        await embed_chunks(
            batch(0, 0, 1, last=True, total=1).model_copy(update={"tenant_id": tenant}),
            embedder=FakeEmbedder(),
            vectors=MemoryVectors(),
            publish=publish,
        )
        [indexed] = [e for e in publish.events if isinstance(e, DocumentIndexed)]
        ids.append(indexed.event_id)
    assert ids[0] != ids[1]
