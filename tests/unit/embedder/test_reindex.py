"""Re-embedding with another model, step by step, on Qdrant's local mode (the real client
code), on Qdrant Edge (the embedded default) and on a Qdrant server where one is available
(support/qdrant.py), with fake models whose vectors come from each text's hash."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from uuid import UUID, uuid4

import numpy as np
import numpy.typing as npt
import pytest
from qdrant_client import QdrantClient
from qdrant_client.http import models as qmodels

from docflow_embedder.adapters.embedded import open_embedded
from docflow_embedder.adapters.qdrant import ACTIVE_ALIAS, BUILDING_ALIAS, QdrantIndex
from docflow_embedder.domain import ModelUnavailable, Targets, point_id
from docflow_embedder.handlers import embed_batches, remove_vectors
from docflow_embedder.keywords import query_vector
from docflow_embedder.reindex import Reindexer
from docflow_shared.events import (
    Chunk,
    DocumentDeleted,
    EmbeddingSpec,
    Envelope,
    ReindexAdvanced,
    ReindexCompleted,
    ReindexFailed,
    ReindexRequested,
    TextExtracted,
)

OLD = EmbeddingSpec(backend="local", model="old-model")
NEW = EmbeddingSpec(backend="openai", model="new-model")


class HashEmbedder:
    """Same text, same vector; different models give different vectors."""

    def __init__(self, model: str, dimension: int) -> None:
        self.model = model
        self.dimension = dimension
        self.texts: list[str] = []
        self.broken = False

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if self.broken:
            raise RuntimeError("the embeddings endpoint answered 500")
        self.texts.extend(texts)
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(f"{self.model}:{text}".encode()).digest()[:8])
            vector = np.random.default_rng(seed).normal(size=self.dimension)
            rows.append(vector / np.linalg.norm(vector))
        return np.array(rows, dtype=np.float32)


class FakeModels:
    def __init__(self) -> None:
        self.built = {OLD: HashEmbedder("old-model", 4), NEW: HashEmbedder("new-model", 6)}

    def get(self, spec: EmbeddingSpec) -> HashEmbedder:
        if spec not in self.built:
            raise ModelUnavailable(f"no model {spec.model}")
        return self.built[spec]


class Loop:
    """The embedder's reindex subscriber and everyone else's view of its topics."""

    def __init__(self, reindexer: Reindexer) -> None:
        self.reindexer = reindexer
        self.published: list[Envelope] = []
        self.pending: list[ReindexAdvanced] = []

    async def publish(self, event: Envelope) -> None:
        self.published.append(event)
        if isinstance(event, ReindexAdvanced):
            self.pending.append(event)

    async def step(self) -> ReindexAdvanced:
        event = self.pending.pop(0)
        await self.reindexer.advance(event)
        return event

    async def run(self, *, limit: int = 1000) -> Envelope:
        for _ in range(limit):
            if not self.pending:
                break
            await self.step()
        return self.published[-1]


@pytest.fixture
def models() -> FakeModels:
    return FakeModels()


@pytest.fixture(
    params=[
        pytest.param("local", id="local-mode"),
        pytest.param("edge", id="edge"),
        pytest.param("server", id="server", marks=pytest.mark.integration),
    ]
)
def index(
    request: pytest.FixtureRequest, models: FakeModels, tmp_path: Path
) -> Iterator[QdrantIndex]:
    if request.param == "local":
        client = QdrantClient(":memory:")
    elif request.param == "edge":
        client = open_embedded(tmp_path / "qdrant")
    else:
        client = QdrantClient(url=request.getfixturevalue("qdrant_url"))
        client.update_collection_aliases(
            change_aliases_operations=[
                qmodels.DeleteAliasOperation(
                    delete_alias=qmodels.DeleteAlias(alias_name=alias.alias_name)
                )
                for alias in client.get_aliases().aliases
            ]
        )
        for collection in client.get_collections().collections:
            client.delete_collection(collection.name)
    index = QdrantIndex(client, models, index_payload=request.param != "local")
    index.start(OLD)
    yield index
    client.close()


@pytest.fixture
def loop(index: QdrantIndex, models: FakeModels) -> Loop:
    loop = Loop(None)  # type: ignore[arg-type]
    loop.reindexer = Reindexer(index, models, loop.publish, page_size=5)
    return loop


def batch(document_id: UUID, texts: list[str], tenant: str = "t1") -> TextExtracted:
    return TextExtracted(
        document_id=document_id,
        tenant_id=tenant,
        correlation_id="c",
        batch=0,
        chunks=[
            Chunk(index=i, text=t, page=1, page_end=1, char_start=0, char_end=len(t))
            for i, t in enumerate(texts)
        ],
        last=True,
        chunks_total=len(texts),
    )


async def _ignore(event: Envelope) -> None:
    pass


async def index_document(index: QdrantIndex, event: TextExtracted) -> None:
    """What the embedder's consumer does with a chunk batch."""
    targets = index.targets()
    await embed_batches(
        [event],
        embedder=targets.active.embedder,
        vectors=targets.active.vectors,
        publish=_ignore,
        also=targets.building,
    )


def request(spec: EmbeddingSpec = NEW, documents: list[UUID] | None = None) -> ReindexRequested:
    return ReindexRequested(
        reindex_id=uuid4(),
        tenant_id="admin",
        correlation_id="c",
        embedding=spec,
        document_ids=documents,
    )


def texts_of(n: int, document: str) -> list[str]:
    return [f"{document}: sentence number {i} about glaciers" for i in range(n)]


def ids_in(index: QdrantIndex, collection: str) -> set[UUID]:
    points, cursor = index.store(collection).page(None, 10_000)
    assert cursor is None
    return {p.id for p in points}


def twins(index: QdrantIndex, collection: str, model: str) -> set[UUID]:
    """The ids ``model`` gives to the chunks in ``collection``."""
    points, _ = index.store(collection).page(None, 10_000)
    return {
        point_id(
            p.payload["tenant_id"], UUID(p.payload["document_id"]), p.payload["chunk_index"], model
        )
        for p in points
    }


async def test_every_chunk_is_re_embedded_then_searches_switch(
    index: QdrantIndex, loop: Loop, models: FakeModels
) -> None:
    documents = {uuid4(): texts_of(7, "a"), uuid4(): texts_of(6, "b")}
    for document_id, texts in documents.items():
        await index_document(index, batch(document_id, texts))
    old = index.active_name()

    await loop.reindexer.start(request())
    assert index.building_name() == "docflow_new-model_6_bm25v1"
    # Until the switch, searches use the old collection and its model.
    assert index.targets().active.embedder.model == "old-model"
    assert index.targets().active.vectors.collection == old

    done = await loop.run()

    assert isinstance(done, ReindexCompleted), done
    assert done.switched
    assert done.embedded == 13
    assert index.active_name() == "docflow_new-model_6_bm25v1"
    assert index.building_name() is None
    assert index.targets().active.embedder.model == "new-model"
    new = index.active_name()
    # Each chunk once, under the new model's id, with its payload.
    assert ids_in(index, new) == twins(index, old, "new-model")
    assert sorted(models.built[NEW].texts) == sorted(t for ts in documents.values() for t in ts)
    # The old collection is kept.
    assert len(ids_in(index, old)) == 13
    # Search in the new collection with the new model finds a chunk by its text.
    text = documents[next(iter(documents))][3]
    [vector] = models.built[NEW].embed([text])
    [hit] = index.targets().active.vectors.search(vector, "t1", 1)
    assert hit.text == text
    assert hit.score == pytest.approx(1.0, abs=1e-5)


async def test_chunks_are_re_embedded_with_their_title_and_headings(
    index: QdrantIndex, loop: Loop, models: FakeModels
) -> None:
    titled = Chunk(
        index=0,
        text="Moraines mark the glacier's furthest advance.",
        char_start=0,
        char_end=45,
        title="Alpine glaciers",
        headings=("Landforms",),
    )
    old = batch(uuid4(), ["A chunk written before titles existed."])
    await index_document(index, old)
    await index_document(index, batch(uuid4(), ["x"]).model_copy(update={"chunks": [titled]}))
    await loop.reindexer.start(request())
    assert isinstance(await loop.run(), ReindexCompleted)
    # What the new model embedded is what the old one did: Chunk.embedded.
    assert sorted(models.built[NEW].texts) == sorted(
        [titled.embedded, "A chunk written before titles existed."]
    )
    assert titled.embedded.startswith("Alpine glaciers › Landforms\n\n")


async def test_progress_is_reported_page_by_page_with_stable_event_ids(
    index: QdrantIndex, loop: Loop
) -> None:
    await index_document(index, batch(uuid4(), texts_of(12, "a")))
    await loop.reindexer.start(request())
    await loop.run()
    steps = [e for e in loop.published if isinstance(e, ReindexAdvanced)]
    first_pass = [(e.done, e.more) for e in steps if e.sweep == 1]
    assert first_pass == [(0, True), (5, True), (10, True), (12, False)]
    assert all(e.total == 12 for e in steps)
    assert [e.embedded for e in steps if e.sweep == 2][-1] == 12
    # A step read again after the end changes nothing and says nothing.
    published = len(loop.published)
    await loop.reindexer.advance(steps[1])
    assert len(loop.published) == published


async def test_a_step_taken_twice_publishes_the_same_next_step_and_embeds_nothing_more(
    index: QdrantIndex, loop: Loop, models: FakeModels
) -> None:
    await index_document(index, batch(uuid4(), texts_of(12, "a")))
    await loop.reindexer.start(request())
    first = await loop.step()
    [after] = loop.pending
    embedded = len(models.built[NEW].texts)
    await loop.reindexer.advance(first)  # redelivered: the commit was lost in a crash
    again = loop.pending[-1]
    assert again.event_id == after.event_id
    assert (again.cursor, again.done, again.total) == (after.cursor, after.done, after.total)
    # Nothing embedded twice (the status keeps the highest ``embedded`` it saw).
    assert len(models.built[NEW].texts) == embedded
    assert again.embedded == 0


async def test_new_documents_go_to_both_collections_while_it_runs(
    index: QdrantIndex, loop: Loop
) -> None:
    await index_document(index, batch(uuid4(), texts_of(10, "a")))
    await loop.reindexer.start(request())
    await loop.step()  # the first page
    late = uuid4()
    await index_document(index, batch(late, texts_of(3, "late")))
    assert isinstance(await loop.run(), ReindexCompleted)
    new_ids = ids_in(index, index.active_name())
    assert {point_id("t1", late, i, "new-model") for i in range(3)} <= new_ids
    assert len(new_ids) == 13


async def test_a_broken_new_model_does_not_fail_new_documents(
    index: QdrantIndex, loop: Loop, models: FakeModels
) -> None:
    await index_document(index, batch(uuid4(), texts_of(3, "a")))
    await loop.reindexer.start(request())
    models.built[NEW].broken = True
    late = uuid4()
    recorder = Loop(loop.reindexer)
    targets = index.targets()
    await embed_batches(
        [batch(late, texts_of(2, "late"))],
        embedder=targets.active.embedder,
        vectors=targets.active.vectors,
        publish=recorder.publish,  # type: ignore[arg-type]
        also=targets.building,
    )
    # Indexed in the collection searches use; the reindex meets the error itself.
    assert [e.event_type for e in recorder.published] == [
        "docflow.document.progressed",
        "docflow.document.indexed",
    ]
    assert {point_id("t1", late, i, "old-model") for i in range(2)} <= ids_in(
        index, index.active_name()
    )
    assert isinstance(await loop.run(), ReindexFailed)


async def test_the_second_pass_catches_chunks_written_only_to_the_old_collection(
    index: QdrantIndex, loop: Loop
) -> None:
    await index_document(index, batch(uuid4(), texts_of(10, "a")))
    old = index.active_name()
    await loop.reindexer.start(request())
    await loop.step()
    await loop.step()
    # A replica that had not yet seen the building alias writes to the old one only.
    straggler = uuid4()
    alone = Targets(index.targets().active)
    await embed_batches(
        [batch(straggler, texts_of(4, "straggler"))],
        embedder=alone.active.embedder,
        vectors=alone.active.vectors,
        publish=_ignore,
    )
    done = await loop.run()
    assert isinstance(done, ReindexCompleted)
    assert done.switched
    assert ids_in(index, index.active_name()) == twins(index, old, "new-model")
    assert {point_id("t1", straggler, i, "new-model") for i in range(4)} <= ids_in(
        index, index.active_name()
    )


async def test_a_document_deleted_while_it_runs_is_gone_from_both(
    index: QdrantIndex, loop: Loop
) -> None:
    keep, gone = uuid4(), uuid4()
    await index_document(index, batch(keep, texts_of(4, "keep")))
    await index_document(index, batch(gone, texts_of(4, "gone")))
    old = index.active_name()
    await loop.reindexer.start(request())
    await loop.step()  # some chunks of both copied
    targets = index.targets()
    assert targets.building is not None
    await remove_vectors(
        DocumentDeleted(document_id=gone, tenant_id="t1", correlation_id="c"),
        vectors=targets.active.vectors,
        also=targets.building.vectors,
    )
    assert isinstance(await loop.run(), ReindexCompleted)
    new = index.active_name()
    assert ids_in(index, new) == {point_id("t1", keep, i, "new-model") for i in range(4)}
    assert len(ids_in(index, old)) == 4


async def test_a_deletion_racing_a_page_is_undone_in_the_new_collection(
    index: QdrantIndex, models: FakeModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page read the chunks, the deletion cleared both collections, then the page
    wrote its copies: the copy checks the old collection again and takes them back."""
    from docflow_embedder import reindex as module

    doomed = uuid4()
    await index_document(index, batch(doomed, texts_of(3, "doomed")))
    old_store = index.store(index.active_name())
    new_store = index.create("docflow_new-model_6", NEW, 6)
    points, _ = old_store.page(None, 10)
    embedder = models.get(NEW)
    real_embed = embedder.embed

    def embed_while_deleted(texts: Sequence[str]) -> npt.NDArray[np.float32]:
        old_store.delete_document("t1", doomed)  # the deletion, mid-copy
        new_store.delete_document("t1", doomed)
        return real_embed(texts)

    monkeypatch.setattr(embedder, "embed", embed_while_deleted)
    module._copy(points, old_store, new_store, embedder)
    assert new_store.count() == 0


async def test_chosen_documents_are_re_embedded_and_the_switch_waits_for_the_rest(
    index: QdrantIndex, loop: Loop, models: FakeModels
) -> None:
    chosen, other = uuid4(), uuid4()
    await index_document(index, batch(chosen, texts_of(3, "chosen")))
    await index_document(index, batch(other, texts_of(2, "other")))
    old = index.active_name()
    await loop.reindexer.start(request(documents=[chosen]))
    done = await loop.run()
    assert isinstance(done, ReindexCompleted)
    assert not done.switched
    assert "3 of the 5 chunks" in done.message
    assert index.active_name() == old
    assert index.building_name() == "docflow_new-model_6_bm25v1"
    assert sorted(models.built[NEW].texts) == sorted(texts_of(3, "chosen"))
    # The rest, later: now it is complete, and it switches.
    await loop.reindexer.start(request(documents=[other]))
    done = await loop.run()
    assert isinstance(done, ReindexCompleted)
    assert done.switched
    assert index.active_name() == "docflow_new-model_6_bm25v1"


async def test_an_unknown_model_or_the_current_one_fails_with_a_reason(
    index: QdrantIndex, loop: Loop
) -> None:
    old = index.active_name()
    await loop.reindexer.start(request(EmbeddingSpec(backend="openai", model="nope")))
    await loop.reindexer.start(request(OLD))
    unknown, same = loop.published
    assert isinstance(unknown, ReindexFailed)
    assert unknown.reason == "no model nope"
    assert isinstance(same, ReindexFailed)
    assert same.reason == f"{old} already holds old-model's vectors: nothing to re-embed"
    assert index.active_name() == old
    assert index.building_name() is None


async def test_a_failure_stops_it_and_asking_again_continues_from_what_was_done(
    index: QdrantIndex, loop: Loop, models: FakeModels
) -> None:
    await index_document(index, batch(uuid4(), texts_of(12, "a")))
    old = index.active_name()
    await loop.reindexer.start(request())
    await loop.step()  # 5 chunks embedded
    models.built[NEW].broken = True
    failed = await loop.run()
    assert isinstance(failed, ReindexFailed)
    assert "the embeddings endpoint answered 500" in failed.reason
    assert "asking again continues" in failed.reason
    # Searches never left the old collection; new documents no longer go to both.
    assert index.active_name() == old
    assert index.building_name() is None

    models.built[NEW].broken = False
    models.built[NEW].texts.clear()
    await loop.reindexer.start(request())
    done = await loop.run()
    assert isinstance(done, ReindexCompleted)
    assert done.switched
    assert done.embedded == 7  # only what the first attempt had not done
    assert len(models.built[NEW].texts) == 7


async def test_a_newer_request_supersedes_a_running_one(index: QdrantIndex, loop: Loop) -> None:
    third = EmbeddingSpec(backend="openai", model="third-model")
    loop.reindexer._models.built[third] = HashEmbedder("third-model", 5)  # type: ignore[attr-defined]
    await index_document(index, batch(uuid4(), texts_of(12, "a")))
    first = request()
    await loop.reindexer.start(first)
    await loop.reindexer.start(request(third))
    await loop.run()
    failed = [e for e in loop.published if isinstance(e, ReindexFailed)]
    assert [e.reindex_id for e in failed] == [first.reindex_id]
    assert (
        failed[0].reason == "another reindex (into docflow_third-model_5_bm25v1) has started since"
    )
    assert index.active_name() == "docflow_third-model_5_bm25v1"


def test_the_aliases_survive_a_restart(tmp_path: object, models: FakeModels) -> None:
    path = str(tmp_path)
    client = QdrantClient(path=path)
    index = QdrantIndex(client, models, index_payload=False)
    index.start(OLD)
    index.create("docflow_new-model_6", NEW, 6)
    index.switch("docflow_new-model_6")
    client.close()
    reopened = QdrantClient(path=path)
    try:
        # The settings still name the old model: the active collection wins.
        active = QdrantIndex(reopened, models, index_payload=False).start(OLD)
        assert active.embedder.model == "new-model"
        assert {a.alias_name for a in reopened.get_aliases().aliases} == {ACTIVE_ALIAS}
        assert BUILDING_ALIAS not in {a.alias_name for a in reopened.get_aliases().aliases}
    finally:
        reopened.close()


async def test_re_embedding_with_the_same_model_adds_keyword_vectors(
    index: QdrantIndex, loop: Loop
) -> None:
    """A collection made before keyword vectors (no ``bm25`` sparse vector, the old name)
    is re-embedded with its own model into a new collection that has them; then keyword
    search works."""
    legacy = f"docflow_old-model_4_{uuid4().hex[:6]}"
    index.client.create_collection(
        legacy,
        vectors_config=qmodels.VectorParams(size=4, distance=qmodels.Distance.COSINE),
        metadata=OLD.model_dump(),
    )
    index.switch(legacy)
    assert not index.targets().active.vectors.keywords
    documents = {uuid4(): texts_of(6, "a"), uuid4(): ["the survey of Ms Wojciechowska"]}
    for document_id, texts in documents.items():
        await index_document(index, batch(document_id, texts))

    await loop.reindexer.start(request(OLD))
    done = await loop.run()

    assert isinstance(done, ReindexCompleted), done
    assert done.switched
    assert done.embedded == 7
    active = index.targets().active.vectors
    assert active.collection == "docflow_old-model_4_bm25v1" != legacy
    assert active.keywords
    # Same model, same point ids; each with its keyword vector.
    assert ids_in(index, active.collection) == ids_in(index, legacy)
    records, _ = index.client.scroll(active.collection, limit=100, with_vectors=True)
    assert all("bm25" in r.vector for r in records)  # type: ignore[operator]
    [hit] = active.search(None, "t1", 5, query_vector("Wojciechowska"))
    assert hit.text == "the survey of Ms Wojciechowska"
