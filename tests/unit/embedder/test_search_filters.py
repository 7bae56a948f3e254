"""Filters and the document-level mode of search, on Qdrant's local mode, with chunks
stored by the embedder's own handler (their payload as in production), in every
search mode (dense, keyword, hybrid: the filter is in each prefetch).

The rule that matters most: a filter only ever narrows the caller's tenant's
chunks. Another tenant's document id, filename or metadata in a filter finds
nothing of theirs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import numpy as np
import numpy.typing as npt
import pytest
from qdrant_client.http import models

from docflow_embedder.adapters.qdrant import QdrantVectorStore, local_client
from docflow_embedder.adapters.qdrant_filters import PAYLOAD_INDEXES, search_filter
from docflow_embedder.domain import DocumentHits, SearchFilters, SearchMode
from docflow_embedder.entrypoints.http import BadFilter, parse_filters
from docflow_embedder.handlers import embed_chunks, search_chunks
from docflow_shared.events import Chunk, DocumentUploaded, Event, TextExtracted

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class WordEmbedder:
    """Vectors from a few words, so that nearness is predictable."""

    model = "words/model"
    dimension = 4
    WORDS = ("apple", "river", "stone", "cloud")

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        rows = [[t.count(w) + 0.01 for w in self.WORDS] for t in texts]
        vectors = np.array(rows, dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


async def _nothing(event: Event) -> None:
    return None


def _upload(
    store: QdrantVectorStore,
    tenant: str,
    filename: str,
    metadata: dict[str, Any] | None,
    at: datetime,
    texts: list[str],
) -> UUID:
    uploaded = DocumentUploaded(
        document_id=uuid4(),
        tenant_id=tenant,
        correlation_id="c",
        occurred_at=at,
        filename=filename,
        content_type="text/plain",
        size_bytes=1,
        sha256="0" * 64,
        blob_key=f"{tenant}/x/original",
        metadata=metadata,
    )
    chunks = [
        Chunk(index=i, text=text, char_start=0, char_end=len(text)) for i, text in enumerate(texts)
    ]
    batch = TextExtracted.caused_by(
        uploaded,
        batch=0,
        chunks=chunks,
        last=True,
        chunks_total=len(chunks),
        document=uploaded.facts,
    )
    asyncio.run(embed_chunks(batch, embedder=WordEmbedder(), vectors=store, publish=_nothing))
    return uploaded.document_id


@pytest.fixture
def store(tmp_path: Path) -> QdrantVectorStore:
    return QdrantVectorStore(local_client(tmp_path / "q"), "c", WordEmbedder.dimension)


@pytest.fixture
def corpus(store: QdrantVectorStore) -> dict[str, UUID]:
    return {
        "red": _upload(
            store,
            "acme",
            "red.txt",
            {"team": "red", "year": 2024, "tags": ["fruit", "x"]},
            T0,
            ["apple apple", "apple river", "stone"],
        ),
        "blue": _upload(
            store,
            "acme",
            "blue.txt",
            {"team": "blue", "year": 2025},
            T0 + timedelta(days=2),
            ["apple"],
        ),
        "plain": _upload(store, "acme", "plain.txt", None, T0 + timedelta(days=4), ["apple cloud"]),
        # Another tenant's document, with the same metadata as acme's red one.
        "theirs": _upload(
            store,
            "globex",
            "red.txt",
            {"team": "red", "year": 2024, "tags": ["fruit", "x"]},
            T0,
            ["apple apple apple"],
        ),
    }


MODES: tuple[SearchMode, ...] = ("dense", "keyword", "hybrid")


def _search(
    store: QdrantVectorStore,
    tenant: str,
    filters: SearchFilters | None = None,
    mode: SearchMode = "dense",
) -> set[UUID]:
    found = asyncio.run(
        search_chunks(
            "apple", tenant, 10, embedder=WordEmbedder(), vectors=store, filters=filters, mode=mode
        )
    )
    assert found.mode == mode
    assert found.groups is None
    return {hit.document_id for hit in found.hits}


def _documents(
    store: QdrantVectorStore,
    group_size: int,
    filters: SearchFilters | None = None,
    mode: SearchMode = "dense",
) -> list[DocumentHits]:
    found = asyncio.run(
        search_chunks(
            "apple",
            "acme",
            10,
            embedder=WordEmbedder(),
            vectors=store,
            filters=filters,
            mode=mode,
            group_size=group_size,
        )
    )
    assert found.groups is not None
    assert found.mode == mode
    # The chunks, document by document, in the groups' order.
    assert found.hits == [hit for group in found.groups for hit in group.hits]
    return found.groups


def test_the_payload_holds_what_searches_filter_by(
    store: QdrantVectorStore, corpus: dict[str, UUID]
) -> None:
    points, _ = store.page(None, 10, [corpus["red"]])
    payload = points[0].payload
    assert payload["filename"] == "red.txt"
    assert payload["metadata"] == {"team": "red", "year": 2024, "tags": ["fruit", "x"]}
    assert payload["metadata_terms"] == ["team=red", "year=2024", "tags=fruit", "tags=x"]
    assert datetime.fromisoformat(payload["uploaded_at"]) == T0
    # Each of them has an index on a server.
    assert {"filename", "metadata_terms", "uploaded_at", "tenant_id", "document_id"} <= set(
        PAYLOAD_INDEXES
    )


@pytest.mark.parametrize("mode", MODES)
def test_filters_narrow_by_metadata_name_id_and_time_in_every_mode(
    store: QdrantVectorStore, corpus: dict[str, UUID], mode: SearchMode
) -> None:
    red, blue, plain = corpus["red"], corpus["blue"], corpus["plain"]

    def find(filters: SearchFilters | None = None) -> set[UUID]:
        return _search(store, "acme", filters, mode)

    assert find() == {red, blue, plain}
    assert find(SearchFilters(metadata=(("team=red",),))) == {red}
    # One key's values are alternatives; different keys must all match.
    assert find(SearchFilters(metadata=(("team=red", "team=blue"),))) == {
        red,
        blue,
    }
    assert find(SearchFilters(metadata=(("team=red",), ("year=2025",)))) == set()
    assert find(SearchFilters(metadata=(("year=2025",),))) == {blue}
    # A list value matches any of its items.
    assert find(SearchFilters(metadata=(("tags=fruit",),))) == {red}
    assert find(SearchFilters(filenames=("plain.txt",))) == {plain}
    assert find(SearchFilters(document_ids=(blue, plain))) == {blue, plain}
    after = SearchFilters(created_from=T0 + timedelta(days=1))
    assert find(after) == {blue, plain}
    window = SearchFilters(created_from=T0, created_before=T0 + timedelta(days=3))
    assert find(window) == {red, blue}


@pytest.mark.parametrize("mode", MODES)
def test_no_filter_reaches_another_tenants_chunks_in_any_mode(
    store: QdrantVectorStore, corpus: dict[str, UUID], mode: SearchMode
) -> None:
    theirs = corpus["theirs"]
    assert _search(store, "globex", mode=mode) == {theirs}
    for filters in (
        SearchFilters(document_ids=(theirs,)),
        SearchFilters(filenames=("red.txt",), metadata=(("team=red",),)),
        SearchFilters(metadata=(("tags=fruit",), ("year=2024",))),
        SearchFilters(created_from=T0 - timedelta(days=1), created_before=T0 + timedelta(days=9)),
    ):
        assert theirs not in _search(store, "acme", filters, mode)
        assert theirs not in {g.document_id for g in _documents(store, 3, filters, mode)}
    # The tenant's condition is the first of ``must``, whatever the filters.
    built = search_filter("acme", SearchFilters(document_ids=(theirs,)))
    assert built.must is not None
    assert built.should is None
    assert built.must_not is None
    first = built.must[0]  # type: ignore[index]
    assert (first.key, first.match.value) == ("tenant_id", "acme")  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", MODES)
def test_grouped_search_answers_each_document_once_with_its_best_chunks_in_every_mode(
    store: QdrantVectorStore, corpus: dict[str, UUID], mode: SearchMode
) -> None:
    groups = _documents(store, 2, mode=mode)
    ids = [group.document_id for group in groups]
    assert sorted(ids) == sorted({corpus["red"], corpus["blue"], corpus["plain"]})
    assert len(ids) == len(set(ids))
    red = next(group for group in groups if group.document_id == corpus["red"])
    # Two of its three chunks, best first (in keyword mode too: "stone" has no "apple").
    assert [hit.text for hit in red.hits] == ["apple apple", "apple river"]
    # Best document first: its best chunk scores at least as high as the next one's.
    tops = [group.hits[0].score for group in groups]
    assert tops == sorted(tops, reverse=True)
    filtered = _documents(
        store, 3, SearchFilters(document_ids=(corpus["theirs"], corpus["blue"])), mode
    )
    assert [group.document_id for group in filtered] == [corpus["blue"]]
    by_metadata = _documents(store, 3, SearchFilters(metadata=(("tags=fruit",),)), mode)
    assert [group.document_id for group in by_metadata] == [corpus["red"]]


def test_a_metadata_filter_holds_in_keyword_and_hybrid_mode_where_words_alone_would_not(
    store: QdrantVectorStore, corpus: dict[str, UUID]
) -> None:
    """A word in every document, and a filter naming one: keyword and hybrid search
    answer only that document's chunks, within the tenant (globex's identical
    metadata and text stay out), and grouped hybrid search answers it once."""
    red = SearchFilters(metadata=(("team=red",),), filenames=("red.txt",))
    for mode in ("keyword", "hybrid"):
        found = asyncio.run(
            search_chunks(
                "apple river",
                "acme",
                10,
                embedder=WordEmbedder(),
                vectors=store,
                filters=red,
                mode=mode,  # type: ignore[arg-type]
            )
        )
        assert {hit.document_id for hit in found.hits} == {corpus["red"]}, mode
        # "stone" shares no word: keyword search leaves it out, hybrid ranks it last.
        texts = [hit.text for hit in found.hits]
        assert texts[0] == "apple river", mode
        assert ("stone" in texts) == (mode == "hybrid"), mode
        unfiltered = asyncio.run(
            search_chunks(
                "apple river",
                "acme",
                10,
                embedder=WordEmbedder(),
                vectors=store,
                mode=mode,  # type: ignore[arg-type]
            )
        )
        assert {hit.document_id for hit in unfiltered.hits} > {corpus["red"]}, mode
    [group] = _documents(store, 2, red, "hybrid")
    assert group.document_id == corpus["red"]


def test_the_embedder_reads_filters_from_the_query() -> None:
    doc = uuid4()
    filters = parse_filters(
        {
            "meta": ["team=red", "year=2024", "team=blue"],
            "filename": ["a.pdf"],
            "document_id": [str(doc)],
            "created_from": ["2026-01-01T00:00:00+00:00"],
        }
    )
    assert filters.metadata == (("team=red", "team=blue"), ("year=2024",))
    assert (filters.filenames, filters.document_ids) == (("a.pdf",), (doc,))
    assert filters.created_from == T0
    assert filters.created_before is None
    assert not parse_filters({})
    for bad in (
        {"meta": ["no-equals"]},
        {"document_id": ["not-a-uuid"]},
        {"created_from": ["yesterday"]},
        {"created_before": ["2026-01-01T00:00:00"]},
        {"filename": ["x"] * 101},
    ):
        with pytest.raises(BadFilter):
            parse_filters(bad)


def test_a_server_collection_gets_an_index_for_every_filtered_field() -> None:
    class Recording:
        def __init__(self) -> None:
            self.indexes: dict[str, object] = {}

        def collection_exists(self, name: str) -> bool:
            return True

        def get_collection(self, name: str) -> Any:
            params = SimpleNamespace(sparse_vectors={"bm25": None})
            return SimpleNamespace(config=SimpleNamespace(params=params))

        def create_payload_index(
            self, collection: str, field: str, schema: object, **_: Any
        ) -> None:
            self.indexes[field] = schema

    client = Recording()
    QdrantVectorStore(client, "c", 4, index_payload=True)  # type: ignore[arg-type]
    assert client.indexes == {
        "tenant_id": models.PayloadSchemaType.KEYWORD,
        "document_id": models.PayloadSchemaType.KEYWORD,
        "filename": models.PayloadSchemaType.KEYWORD,
        "metadata_terms": models.PayloadSchemaType.KEYWORD,
        "uploaded_at": models.PayloadSchemaType.DATETIME,
    }
