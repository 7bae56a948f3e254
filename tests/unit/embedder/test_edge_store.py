"""Qdrant Edge, the embedded default, behind the embedder's own adapter.

The same calls as the embedder makes (``QdrantVectorStore``, ``QdrantIndex``),
on real Edge shards in a temporary folder: writes, searches, filters, deletion
by document, the alias switch and what survives a restart (a clean close, and
a killed process), several writers at once without a lock, and what hybrid
search and metadata filters need (a sparse vector with the IDF modifier,
prefetch + RRF fusion, payload filters). Where both can answer, Edge's answers
are held to qdrant-client's local mode given the same calls.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from uuid import UUID, uuid4

import numpy as np
import pytest
from qdrant_client import QdrantClient
from qdrant_client.http import models
from unit.embedder.test_qdrant_local import CHUNKS, _hammer
from unit.embedder.test_reindex import NEW, OLD, FakeModels

from docflow_embedder.adapters.edge import EdgeClient
from docflow_embedder.adapters.edge_models import Unsupported
from docflow_embedder.adapters.embedded import EDGE_FOLDER, open_embedded
from docflow_embedder.adapters.qdrant import (
    ACTIVE_ALIAS,
    BUILDING_ALIAS,
    QdrantIndex,
    QdrantVectorStore,
    collection_name,
    local_client,
)
from docflow_embedder.adapters.qdrant_filters import PAYLOAD_INDEXES
from docflow_embedder.adapters.qdrant_queries import search_request
from docflow_embedder.domain import VectorPoint, point_id
from docflow_embedder.keywords import SparseVector


def chunk_points(
    tenant: str, document: UUID, n: int, *, dimension: int = 8, seed: int = 3
) -> list[VectorPoint]:
    rows = np.random.default_rng(seed).normal(size=(n, dimension)).astype(np.float32)
    return [
        VectorPoint(
            id=point_id(tenant, document, i, "m"),
            vector=rows[i],
            payload={
                "tenant_id": tenant,
                "document_id": str(document),
                "chunk_index": i,
                "attempt": 1,
                "page": i + 1,
                "page_end": i + 1,
                "text": f"chunk {i}",
            },
        )
        for i in range(n)
    ]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[QdrantClient]:
    opened = open_embedded(tmp_path / "qdrant")
    yield opened
    opened.close()


def test_it_is_edge_with_payload_indexes(client: QdrantClient) -> None:
    assert isinstance(client, EdgeClient)
    QdrantVectorStore(client, "chunks", 8, index_payload=True)
    # Made again at every start: indexing an indexed field changes nothing.
    store = QdrantVectorStore(client, "chunks", 8, index_payload=True)
    store.upsert(chunk_points("t", uuid4(), 3))
    schema = client.get_collection("chunks").payload_schema
    # Every index the store declares; the test points carry only the first two.
    assert {k: v.data_type for k, v in schema.items()} == PAYLOAD_INDEXES
    assert {k: v.points for k, v in schema.items() if v.points} == {
        "tenant_id": 3,
        "document_id": 3,
    }


def test_write_search_count_and_delete_by_document(client: QdrantClient) -> None:
    store = QdrantVectorStore(client, "chunks", 8, index_payload=True)
    mine, other, theirs = uuid4(), uuid4(), uuid4()
    points = chunk_points("acme", mine, 5)
    store.upsert(points)
    store.upsert(points)  # a redelivered batch overwrites
    store.upsert(chunk_points("acme", other, 4, seed=4))
    store.upsert(chunk_points("globex", theirs, 2))
    assert store.count() == 11
    assert store.count([mine, theirs]) == 7
    assert store.stored("acme", mine, 1) == 5
    assert store.stored("acme", mine, 2) == 0
    [best, *_] = store.search(points[3].vector, "acme", 3)
    assert (best.document_id, best.chunk_index, best.page, best.text) == (mine, 3, 4, "chunk 3")
    assert best.score == pytest.approx(1.0, abs=1e-5)
    # Another tenant's identical vectors are never found.
    assert {h.document_id for h in store.search(points[0].vector, "globex", 10)} == {theirs}
    assert store.owned_by_another_tenant("globex", mine)
    assert not store.owned_by_another_tenant("acme", mine)
    store.delete_document("globex", mine)  # not globex's: nothing goes
    assert store.stored("acme", mine, 1) == 5
    store.delete_document("acme", mine)
    assert store.count() == 6
    assert store.existing([points[0].id]) == set()
    store.delete([point_id("globex", theirs, 0, "m")])
    assert store.count([theirs]) == 1


def test_pages_walk_every_point_once_in_id_order(client: QdrantClient) -> None:
    store = QdrantVectorStore(client, "chunks", 8)
    wanted = chunk_points("t", uuid4(), 9) + chunk_points("t", uuid4(), 4)
    store.upsert(wanted)
    seen: list[UUID] = []
    cursor: str | None = None
    while True:
        page, cursor = store.page(cursor, 4)
        assert all(p.payload["tenant_id"] == "t" for p in page)
        seen += [p.id for p in page]
        if cursor is None:
            break
    assert seen == sorted(p.id for p in wanted)


def test_the_alias_switch_is_one_step_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "qdrant"
    client = open_embedded(path)
    index = QdrantIndex(client, FakeModels(), index_payload=True)
    old = index.start(OLD).vectors.collection
    index.create("docflow_new-model_6", NEW, 6)
    index.begin("docflow_new-model_6")
    assert index.targets().building is not None
    index.switch("docflow_new-model_6")
    client.close()
    registry = json.loads((path / EDGE_FOLDER / "collections.json").read_text())
    assert registry["aliases"] == {ACTIVE_ALIAS: "docflow_new-model_6"}
    again = open_embedded(path)
    try:
        index = QdrantIndex(again, FakeModels(), index_payload=True)
        # The switch wins over the settings' model at the next start.
        assert index.start(OLD).vectors.collection == "docflow_new-model_6"
        assert index.building_name() is None
        assert index.metadata_spec(old) == OLD
        assert again.get_collection(ACTIVE_ALIAS).config.metadata == NEW.model_dump()
        with pytest.raises(ValueError, match="not found"):
            again.update_collection_aliases(
                change_aliases_operations=[
                    models.DeleteAliasOperation(
                        delete_alias=models.DeleteAlias(alias_name=BUILDING_ALIAS)
                    ),
                ]
            )
        # A failed operation changed nothing.
        assert index.active_name() == "docflow_new-model_6"
    finally:
        again.close()


_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from uuid import UUID
from docflow_embedder.adapters.embedded import open_embedded
from docflow_embedder.adapters.qdrant import QdrantVectorStore
from unit.embedder.test_edge_store import chunk_points
client = open_embedded(Path(sys.argv[1]))
store = QdrantVectorStore(client, "chunks", 8, index_payload=True)
store.upsert(chunk_points("t", UUID(sys.argv[2]), 7))
store.delete_document("t", UUID(sys.argv[3]))
os.kill(os.getpid(), signal.SIGKILL)  # no close, no flush
"""


def test_what_was_written_survives_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "qdrant"
    gone = uuid4()
    client = open_embedded(path)
    QdrantVectorStore(client, "chunks", 8).upsert(chunk_points("t", gone, 2))
    client.close()
    kept = uuid4()
    tests = Path(__file__).resolve().parents[2]
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(path), str(kept), str(gone)],
        env={"PYTHONPATH": str(tests)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr
    again = open_embedded(path)
    try:
        store = QdrantVectorStore(again, "chunks", 8)
        assert store.stored("t", kept, 1) == 7
        assert store.count([gone]) == 0
    finally:
        again.close()


def test_one_process_at_a_time(client: QdrantClient, tmp_path: Path) -> None:
    probe = (
        "import sys; from pathlib import Path;"
        "from docflow_embedder.adapters.embedded import open_embedded;"
        "open_embedded(Path(sys.argv[1]))"
    )
    second = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "qdrant")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode != 0
    assert "is open in another process" in second.stderr


def test_several_writers_and_searchers_at_once_without_a_lock(tmp_path: Path) -> None:
    # The optimizer thread runs between the writes too (after 50 ms, not 2 s).
    client = cast(QdrantClient, EdgeClient(tmp_path / "edge", optimize_after_s=0.05))
    try:
        store = QdrantVectorStore(client, "chunks", 8, index_payload=True)
        errors, kept = _hammer(store)
        assert errors == []
        assert store.count() == kept * CHUNKS
    finally:
        client.close()
    again = EdgeClient(tmp_path / "edge")
    try:
        assert again.count("chunks").count == kept * CHUNKS
    finally:
        again.close()


def test_searches_stay_right_once_the_index_is_built(tmp_path: Path) -> None:
    client = EdgeClient(tmp_path / "edge", indexing_threshold_kb=100)
    try:
        store = QdrantVectorStore(cast(QdrantClient, client), "chunks", 32, index_payload=True)
        points = chunk_points("t", uuid4(), 3000, dimension=32)
        for at in range(0, len(points), 500):
            store.upsert(points[at : at + 500])
        client.optimize()
        # Sealed segments get their HNSW index; the newest, appendable one may not.
        assert client.get_collection("chunks").indexed_vectors_count >= 2000
        for point in points[::300]:
            [best] = store.search(point.vector, "t", 1)
            assert best.chunk_index == point.payload["chunk_index"]
    finally:
        client.close()


# What hybrid search and filters need, held to local mode's answers.

DOCS = [
    "the glacier lost half its volume",
    "invoice due within thirty days",
    "the glacier moved the invoice",
    "thirty glacier photographs of the alps",
    "bake the bread for forty minutes",
]
WHEN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _sparse(text: str) -> models.SparseVector:
    """Term counts, each word an index (a stand-in for a BM25 tokenizer)."""
    counts: dict[int, float] = {}
    for word in text.split():
        counts[abs(hash(word)) % 100_000] = counts.get(abs(hash(word)) % 100_000, 0.0) + 1.0
    return models.SparseVector(indices=list(counts), values=list(counts.values()))


def _hybrid(client: QdrantClient) -> QdrantClient:
    client.create_collection(
        "hybrid",
        vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE),
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    rng = np.random.default_rng(5)
    client.upsert(
        "hybrid",
        points=[
            models.PointStruct(
                id=str(UUID(int=i + 1)),
                vector={"": rng.normal(size=4).tolist(), "bm25": _sparse(text)},
                payload={
                    "tenant_id": "t",
                    "n": i,
                    "text": text,
                    "metadata": {"team": "geo" if "glacier" in text else "ops"},
                    "uploaded_at": (WHEN + dt.timedelta(days=i)).isoformat(),
                    "tags": [] if i % 2 else ["x"],
                    "document_id": str(UUID(int=100 + i // 2)),
                },
            )
            for i, text in enumerate(DOCS)
        ],
    )
    return client


@pytest.fixture
def both(tmp_path: Path) -> Iterator[tuple[QdrantClient, QdrantClient]]:
    local = _hybrid(QdrantClient(":memory:"))
    edge = _hybrid(cast(QdrantClient, EdgeClient(tmp_path / "edge")))
    yield local, edge
    edge.close()
    local.close()


def _ids(response: Any) -> list[Any]:
    return [p.id for p in response.points]


def test_keyword_search_weighs_rare_words_more(both: tuple[QdrantClient, ...]) -> None:
    for client in both:
        found = client.query_points("hybrid", query=_sparse("glacier invoice"), using="bm25")
        # "invoice" is in 2 of 5 texts, "glacier" in 3: the text with both first, then
        # the other invoice text before the glacier ones (IDF).
        assert _ids(found)[:2] == [str(UUID(int=3)), str(UUID(int=2))]


def test_hybrid_fusion_matches_local_mode(both: tuple[QdrantClient, QdrantClient]) -> None:
    dense = np.random.default_rng(5).normal(size=4).tolist()  # DOCS[0]'s vector
    answers = [
        client.query_points(
            "hybrid",
            prefetch=[
                models.Prefetch(query=dense, limit=5),
                models.Prefetch(query=_sparse("thirty days"), using="bm25", limit=5),
            ],
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=3,
        )
        for client in both
    ]
    local, edge = answers
    assert _ids(edge) == _ids(local)
    assert [p.score for p in edge.points] == pytest.approx([p.score for p in local.points])
    # The best of each side is in the fused three: DOCS[0] (its own vector) and
    # DOCS[1] (both words); DOCS[3] ("thirty", and close enough) is in both lists.
    assert {str(UUID(int=1)), str(UUID(int=2))} <= set(_ids(edge))


CROSSED = [("A", [1.0, 0.1], 1.0), ("B", [1.0, 0.5], 2.0)]


def _crossed(client: QdrantClient, order: list[int]) -> QdrantClient:
    """Two chunks ranked the other way round by meaning and by keywords, written
    in ``order``: A is nearer the query's vector, B holds its word more often."""
    client.create_collection(
        "crossed",
        vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE),
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    client.upsert(
        "crossed",
        points=[
            models.PointStruct(
                id=str(UUID(int=n + 1)),
                vector={"": vector, "bm25": models.SparseVector(indices=[7], values=[weight])},
                payload={"tenant_id": "t", "name": name},
            )
            for n, (name, vector, weight) in ((n, CROSSED[n]) for n in order)
        ],
    )
    return client


@pytest.mark.parametrize("order", [[0, 1], [1, 0]], ids=["A-then-B", "B-then-A"])
def test_a_hybrid_tie_goes_to_the_chunk_first_by_meaning(tmp_path: Path, order: list[int]) -> None:
    # With plain RRF the two fused scores are equal and which comes first is the
    # engine's choice; the query docflow sends puts A first, however written.
    keywords = SparseVector(indices=(7,), values=(1.0,))
    within = models.Filter(
        must=[models.FieldCondition(key="tenant_id", match=models.MatchValue(value="t"))]
    )
    request = search_request(np.array([1.0, 0.0], dtype=np.float32), keywords, within, 2)
    for client in (QdrantClient(":memory:"), cast(QdrantClient, EdgeClient(tmp_path / "edge"))):
        _crossed(client, order)
        plain = client.query_points(
            "crossed", **{**request, "query": models.FusionQuery(fusion=models.Fusion.RRF)}
        )
        assert plain.points[0].score == pytest.approx(plain.points[1].score)
        found = client.query_points("crossed", **request, with_payload=True)
        assert [p.payload["name"] for p in found.points if p.payload] == ["A", "B"]
        assert found.points[0].score > found.points[1].score
        client.close()


FILTERS = {
    "metadata": models.Filter(
        must=[models.FieldCondition(key="metadata.team", match=models.MatchValue(value="geo"))]
    ),
    "any of": models.Filter(
        must=[models.FieldCondition(key="n", match=models.MatchAny(any=[1, 4]))]
    ),
    "range and not": models.Filter(
        must=[models.FieldCondition(key="n", range=models.Range(gte=1, lt=4))],
        must_not=[models.FieldCondition(key="n", match=models.MatchValue(value=2))],
    ),
    "upload time": models.Filter(
        must=[
            models.FieldCondition(
                key="uploaded_at",
                range=models.DatetimeRange(gt=WHEN + dt.timedelta(days=2)),
            )
        ]
    ),
    "empty list": models.Filter(
        must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="tags"))]
    ),
    "ids": models.Filter(must=[models.HasIdCondition(has_id=[str(UUID(int=5))])]),
    "should": models.Filter(
        should=[
            models.FieldCondition(key="n", match=models.MatchValue(value=0)),
            models.FieldCondition(key="metadata.team", match=models.MatchValue(value="ops")),
        ]
    ),
}


@pytest.mark.parametrize("name", FILTERS)
def test_payload_filters_match_local_mode(
    both: tuple[QdrantClient, QdrantClient], name: str
) -> None:
    wanted = FILTERS[name]
    local, edge = both
    found = [
        sorted(p.id for p in c.scroll("hybrid", scroll_filter=wanted, limit=10)[0]) for c in both
    ]
    assert found[0] == found[1]
    assert found[1]  # each filter keeps something
    assert edge.count("hybrid", count_filter=wanted).count == len(found[1])
    dense = [1.0, 0.0, 0.0, 0.0]
    assert _ids(edge.query_points("hybrid", query=dense, query_filter=wanted)) == _ids(
        local.query_points("hybrid", query=dense, query_filter=wanted)
    )


@pytest.mark.parametrize(("group_by", "size"), [("document_id", 2), ("metadata.team", 1)])
def test_grouped_queries_match_local_mode(
    both: tuple[QdrantClient, QdrantClient], group_by: str, size: int
) -> None:
    """Chunks grouped by document (or by a metadata field): the best groups, each with
    its best hits, as a server and local mode give them."""
    dense = [0.3, -0.2, 0.9, 0.1]
    answers = [
        client.query_points_groups(
            "hybrid", group_by=group_by, query=dense, limit=2, group_size=size
        )
        for client in both
    ]
    local, edge = ([(g.id, [h.id for h in g.hits]) for g in a.groups] for a in answers)
    assert edge == local
    assert len(edge) == 2
    assert all(len(hits) == size for _, hits in edge)


def test_a_sparse_vector_can_be_added_to_an_existing_collection(tmp_path: Path) -> None:
    client = EdgeClient(tmp_path / "edge")
    try:
        store = QdrantVectorStore(cast(QdrantClient, client), "chunks", 8)
        store.upsert(chunk_points("t", uuid4(), 2))
        client.update_collection(
            "chunks",
            sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata={"sparse": "bm25"},
        )
        params = client.get_collection("chunks").config.params
        assert params.sparse_vectors is not None
        assert params.sparse_vectors["bm25"].modifier == models.Modifier.IDF
        client.upsert(
            "chunks",
            [models.PointStruct(id=str(uuid4()), vector={"": [1.0] * 8, "bm25": _sparse("a b")})],
        )
        found = client.query_points("chunks", query=_sparse("b"), using="bm25").points
        assert len(found) == 1
    finally:
        client.close()


def test_what_edge_cannot_do_is_named(client: QdrantClient) -> None:
    QdrantVectorStore(client, "chunks", 8)
    with pytest.raises(Unsupported, match=r"geo conditions.*DOCFLOW_QDRANT_URL"):
        client.count(
            "chunks",
            count_filter=models.Filter(
                must=[
                    models.FieldCondition(
                        key="at",
                        geo_radius=models.GeoRadius(
                            center=models.GeoPoint(lon=0, lat=0), radius=1.0
                        ),
                    )
                ]
            ),
        )
    with pytest.raises(Unsupported, match="create_snapshot"):
        client.create_snapshot("chunks")


OLD_COLLECTION = collection_name("old-model", 4)


def test_a_local_mode_store_is_copied_once(tmp_path: Path) -> None:
    path = tmp_path / "qdrant"
    old = local_client(path)
    index = QdrantIndex(old, FakeModels(), index_payload=False)
    store = index.start(OLD).vectors
    document = uuid4()
    points = chunk_points("t", document, 6, dimension=4)
    store.upsert(points)
    index.create("docflow_new-model_6", NEW, 6)
    index.begin("docflow_new-model_6")
    old.close()

    client = open_embedded(path)
    try:
        assert isinstance(client, EdgeClient)
        index = QdrantIndex(client, FakeModels(), index_payload=True)
        targets = index.targets()
        assert targets.active.vectors.collection == OLD_COLLECTION
        assert targets.building is not None
        assert index.metadata_spec("docflow_new-model_6") == NEW
        moved = cast(QdrantVectorStore, targets.active.vectors)
        assert moved.stored("t", document, 1) == 6
        [best] = moved.search(points[2].vector, "t", 1)
        assert (best.chunk_index, best.score) == (2, pytest.approx(1.0, abs=1e-5))
        stored = client.retrieve(OLD_COLLECTION, [str(points[2].id)], with_vectors=True)
        vectors = stored[0].vector
        # The dense vector is the unnamed one, beside the keyword (sparse) vector.
        dense = vectors[""] if isinstance(vectors, dict) else vectors
        assert np.allclose(dense, points[2].vector / np.linalg.norm(points[2].vector))
        moved.delete_document("t", document)
    finally:
        client.close()
    assert (path / "meta.json").exists()  # local mode's files are left as they were
    # The copy is made once: the deletion above is not undone by a second copy.
    again = open_embedded(path)
    try:
        assert again.count(OLD_COLLECTION).count == 0
    finally:
        again.close()


def test_the_optimizer_thread_indexes_after_writes(tmp_path: Path) -> None:
    client = EdgeClient(tmp_path / "edge", optimize_after_s=0.05, indexing_threshold_kb=100)
    try:
        store = QdrantVectorStore(cast(QdrantClient, client), "chunks", 32)
        store.upsert(chunk_points("t", uuid4(), 2500, dimension=32))
        done = threading.Event()

        def indexed() -> None:
            while client.get_collection("chunks").indexed_vectors_count == 0:
                if done.wait(0.1):
                    return
            done.set()

        watcher = threading.Thread(target=indexed)
        watcher.start()
        watcher.join(timeout=120)
        finished = done.is_set()
        done.set()
        assert finished
    finally:
        client.close()
