"""Vectors in Qdrant: the embedded store (Qdrant Edge, adapters/edge.py; or
qdrant-client's local mode) by default, a server by URL. The adapter speaks
qdrant-client's calls to all three.

One collection per model and dimension. Two aliases, shared by every replica
through Qdrant itself, say which are in use: ``docflow_active`` (searches and
new documents) and, while a re-embedding runs, ``docflow_building`` (new
documents too). Each collection records in its metadata the model that
fills it, so any replica can embed a query for it.

Beside each chunk's dense vector (unnamed), a collection made since hybrid
search holds its keyword vector (the sparse vector ``bm25``, Qdrant's IDF
modifier; ``keywords.py``), computed here from the chunk's text on every
write, so every writer (new chunks, retries, re-embedding) fills it. A
collection made before has none: it serves dense search only until it is
re-embedded into a new one.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import numpy as np
import numpy.typing as npt
from qdrant_client import QdrantClient
from qdrant_client.http import models

from docflow_embedder.adapters.qdrant_filters import PAYLOAD_INDEXES, search_filter
from docflow_embedder.adapters.qdrant_filters import equals as _equals
from docflow_embedder.adapters.qdrant_queries import search_request, sparse
from docflow_embedder.domain import (
    DocumentHits,
    Models,
    SearchFilters,
    SearchHit,
    Target,
    Targets,
    VectorPoint,
)
from docflow_embedder.keywords import (
    KEYWORDS_VECTOR,
    KEYWORDS_VERSION,
    SparseVector,
    document_vector,
)
from docflow_shared.events import EmbeddingSpec

ACTIVE_ALIAS = "docflow_active"
BUILDING_ALIAS = "docflow_building"


_NO_VECTOR: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)


def _of_documents(document_ids: Sequence[UUID] | None) -> models.Filter | None:
    if document_ids is None:
        return None
    return models.Filter(
        must=[
            models.FieldCondition(
                key="document_id", match=models.MatchAny(any=[str(d) for d in document_ids])
            )
        ]
    )


def _hit(point: models.ScoredPoint) -> SearchHit:
    payload = point.payload or {}
    return SearchHit(
        document_id=UUID(payload["document_id"]),
        chunk_index=payload["chunk_index"],
        page=payload.get("page"),
        page_end=payload.get("page_end"),
        score=point.score,
        text=payload["text"],
    )


class _OneCallAtATime:
    """A local-mode client that takes one call at a time.

    qdrant-client's local mode keeps points in numpy arrays and SQLite with no
    locking of its own, and the embedder calls Qdrant from worker threads of
    several consumers (chunk batches, retries, re-embedding) and of searches.
    Two writes at once corrupted it: "cannot start a transaction within a
    transaction", "index … is out of bounds" (found by the fault suite;
    tests/unit/embedder/test_qdrant_local.py). A Qdrant server needs no lock.
    """

    def __init__(self, client: QdrantClient) -> None:
        self._client = client
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return locked


def local_client(path: Path) -> QdrantClient:
    """Qdrant's local mode on ``path`` (no server), safe to call from several threads."""
    path.mkdir(parents=True, exist_ok=True)
    return cast(QdrantClient, _OneCallAtATime(QdrantClient(path=str(path))))


def collection_name(model: str, dimension: int) -> str:
    """One collection per embedding model, dimension and keyword vectors' version; the
    name says which (collections made before keyword vectors have no version in it)."""
    slug = re.sub(r"[^a-z0-9]+", "-", model.rsplit("/", 1)[-1].lower()).strip("-")
    return f"docflow_{slug}_{dimension}_{KEYWORDS_VERSION}"


class QdrantVectorStore:
    """Writes chunk vectors to one collection, creating it if needed."""

    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        dimension: int,
        *,
        index_payload: bool = False,
        spec: EmbeddingSpec | None = None,
        tenant_idf: bool = False,
    ) -> None:
        """``index_payload``: index the payload fields searches and deletions filter by
        (``PAYLOAD_INDEXES``; a Qdrant server and Edge; local mode has no payload indexes
        and scans). ``spec``: the model, kept in a new collection's metadata.
        ``tenant_idf``: keyword search weighs terms by their frequency in the tenant's
        chunks, not the whole collection's (Qdrant 1.19 or later)."""
        self.client = client
        self.collection = collection
        self.tenant_idf = tenant_idf
        if not client.collection_exists(collection):
            client.create_collection(
                collection,
                vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE),
                sparse_vectors_config={
                    KEYWORDS_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
                metadata=spec.model_dump() if spec is not None else None,
            )
        params = client.get_collection(collection).config.params
        # Whether chunks here have keyword vectors (not in collections made before).
        self.keywords = KEYWORDS_VECTOR in (params.sparse_vectors or {})
        if index_payload:
            for field, schema in PAYLOAD_INDEXES.items():
                client.create_payload_index(collection, field, schema, wait=True)

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Write points and return once Qdrant has applied them (``wait=True``)."""
        self.client.upsert(self.collection, points=[self._point(p) for p in points], wait=True)

    def _point(self, point: VectorPoint) -> models.PointStruct:
        vector: dict[str, Any] = {"": point.vector.tolist()}
        if self.keywords:
            keywords = document_vector(str(point.payload.get("text", "")))
            if keywords:  # a chunk of stopwords only has none
                vector[KEYWORDS_VECTOR] = sparse(keywords)
        return models.PointStruct(id=str(point.id), vector=vector, payload=point.payload)

    def delete_document(self, tenant_id: str, document_id: UUID) -> None:
        """Remove every point of one document (returns once applied)."""
        self.client.delete(
            self.collection,
            points_selector=models.FilterSelector(
                filter=models.Filter(
                    must=[
                        _equals("tenant_id", tenant_id),
                        _equals("document_id", str(document_id)),
                    ]
                )
            ),
            wait=True,
        )

    def owned_by_another_tenant(self, tenant_id: str, document_id: UUID) -> bool:
        """Whether points of ``document_id`` are stored, none of them ``tenant_id``'s."""

        def any_point(condition: models.Filter) -> bool:
            found, _ = self.client.scroll(
                self.collection,
                scroll_filter=condition,
                limit=1,
                with_payload=False,
                with_vectors=False,
            )
            return bool(found)

        document = _equals("document_id", str(document_id))
        tenant = _equals("tenant_id", tenant_id)
        return any_point(models.Filter(must=[document], must_not=[tenant])) and not any_point(
            models.Filter(must=[document, tenant])
        )

    def stored(self, tenant_id: str, document_id: UUID, attempt: int) -> int:
        """How many chunks of the document's ``attempt`` are here."""
        return self.client.count(
            self.collection,
            count_filter=models.Filter(
                must=[
                    _equals("tenant_id", tenant_id),
                    _equals("document_id", str(document_id)),
                    models.FieldCondition(key="attempt", match=models.MatchValue(value=attempt)),
                ]
            ),
            exact=True,
        ).count

    def delete(self, ids: Sequence[UUID]) -> None:
        """Remove the points with these ids (returns once applied)."""
        if ids:
            self.client.delete(self.collection, points_selector=[str(i) for i in ids], wait=True)

    def page(
        self, after: str | None, limit: int, document_ids: Sequence[UUID] | None = None
    ) -> tuple[list[VectorPoint], str | None]:
        """Up to ``limit`` points (payload, no vectors) in id order from ``after``, and
        where the next page starts (None: no more)."""
        records, next_offset = self.client.scroll(
            self.collection,
            scroll_filter=_of_documents(document_ids),
            limit=limit,
            offset=after,
            with_payload=True,
            with_vectors=False,
        )
        points = [
            VectorPoint(id=UUID(str(r.id)), vector=_NO_VECTOR, payload=dict(r.payload or {}))
            for r in records
        ]
        return points, None if next_offset is None else str(next_offset)

    def existing(self, ids: Sequence[UUID]) -> set[UUID]:
        """Which of ``ids`` have a point here."""
        if not ids:
            return set()
        found = self.client.retrieve(
            self.collection, [str(i) for i in ids], with_payload=False, with_vectors=False
        )
        return {UUID(str(r.id)) for r in found}

    def count(self, document_ids: Sequence[UUID] | None = None) -> int:
        """Points here (of these documents)."""
        return self.client.count(
            self.collection, count_filter=_of_documents(document_ids), exact=True
        ).count

    def search(
        self,
        vector: npt.NDArray[np.float32] | None,
        tenant_id: str,
        limit: int,
        keywords: SparseVector | None = None,
        filters: SearchFilters | None = None,
    ) -> list[SearchHit]:
        """The tenant's chunks nearest to ``vector`` (cosine), or best matching
        ``keywords`` (BM25), or both fused by Reciprocal Rank Fusion, of those
        ``filters`` allow; best first."""
        request = self._request(vector, keywords, tenant_id, filters, limit, 1)
        if request is None:
            return []
        found = self.client.query_points(self.collection, **request, with_payload=True)
        return [_hit(point) for point in found.points if point.payload is not None]

    def search_groups(
        self,
        vector: npt.NDArray[np.float32] | None,
        tenant_id: str,
        limit: int,
        group_size: int,
        keywords: SparseVector | None = None,
        filters: SearchFilters | None = None,
    ) -> list[DocumentHits]:
        """Up to ``limit`` documents, each once with its best ``group_size`` chunks
        (Qdrant's grouped query, by ``document_id``), best document first; the
        same request (mode, filters) as ``search``."""
        request = self._request(vector, keywords, tenant_id, filters, limit, group_size)
        if request is None:
            return []
        found = self.client.query_points_groups(
            self.collection,
            group_by="document_id",
            group_size=group_size,
            **request,
            with_payload=True,
        )
        return [
            DocumentHits(
                document_id=UUID(str(group.id)),
                hits=[_hit(point) for point in group.hits if point.payload is not None],
            )
            for group in found.groups
        ]

    def _request(
        self,
        vector: npt.NDArray[np.float32] | None,
        keywords: SparseVector | None,
        tenant_id: str,
        filters: SearchFilters | None,
        limit: int,
        group_size: int,
    ) -> dict[str, Any] | None:
        """The query's arguments, or None when nothing can match (keywords only, and
        no term to look for: stopwords only). Every part of it, each prefetch
        included, is within ``search_filter``: the tenant's condition and the filters."""
        if keywords is not None and not self.keywords:
            raise ValueError(f"{self.collection} has no keyword vectors")
        if vector is None and keywords is not None and not keywords:
            return None
        within = search_filter(tenant_id, filters)
        # Per-tenant IDF counts the tenant's chunks, whatever the filters narrow it to.
        corpus = models.Filter(must=[_equals("tenant_id", tenant_id)]) if self.tenant_idf else None
        return search_request(
            vector, keywords, within, limit, idf_corpus=corpus, group_size=group_size
        )

    def check(self) -> Any:
        """Raises unless the collection answers."""
        return self.client.get_collection(self.collection)


class QdrantIndex:
    """Which collections are in use, read from Qdrant's aliases on every call, so every
    replica follows a switch at its next poll; the models come from ``models``."""

    def __init__(
        self, client: QdrantClient, models: Models, *, index_payload: bool, tenant_idf: bool = False
    ) -> None:
        self.client = client
        self._models = models
        self._index_payload = index_payload
        self._tenant_idf = tenant_idf
        self._stores: dict[str, QdrantVectorStore] = {}
        self._specs: dict[str, EmbeddingSpec] = {}

    def start(self, spec: EmbeddingSpec) -> Target:
        """At start-up: the active collection, created for ``spec``'s model the first
        time. Once there is one, it wins over the settings (a re-embedding switched it)."""
        aliases = self._aliases()
        if ACTIVE_ALIAS not in aliases:
            embedder = self._models.get(spec)
            name = collection_name(embedder.model, embedder.dimension)
            self.create(name, spec, embedder.dimension)
            if not self.metadata_spec(name):
                # Made by an older docflow, before collections named their model.
                self.client.update_collection(name, metadata=spec.model_dump())
            self._set_aliases(*self._point(ACTIVE_ALIAS, name))
        return self.targets().active

    def targets(self) -> Targets:
        aliases = self._aliases()
        active = self.target(aliases[ACTIVE_ALIAS])
        building = aliases.get(BUILDING_ALIAS)
        return Targets(active, self.target(building) if building else None)

    def active_name(self) -> str:
        return self._aliases()[ACTIVE_ALIAS]

    def building_name(self) -> str | None:
        return self._aliases().get(BUILDING_ALIAS)

    def target(self, name: str) -> Target:
        """The collection ``name`` and the model its metadata names."""
        spec = self.metadata_spec(name)
        if spec is None:
            raise RuntimeError(f"collection {name} does not say which model fills it")
        return Target(self._models.get(spec), self.store(name))

    def store(self, name: str) -> QdrantVectorStore:
        if name not in self._stores:
            self._stores[name] = QdrantVectorStore(
                self.client, name, 0, index_payload=False, tenant_idf=self._tenant_idf
            )
        return self._stores[name]

    def create(self, name: str, spec: EmbeddingSpec, dimension: int) -> QdrantVectorStore:
        """The collection ``name`` for ``spec``'s vectors, made if missing."""
        store = QdrantVectorStore(
            self.client,
            name,
            dimension,
            index_payload=self._index_payload,
            spec=spec,
            tenant_idf=self._tenant_idf,
        )
        self._stores[name] = store
        return store

    def metadata_spec(self, name: str) -> EmbeddingSpec | None:
        if name not in self._specs:
            metadata = self.client.get_collection(name).config.metadata
            if not metadata:
                return None
            self._specs[name] = EmbeddingSpec.model_validate(metadata)
        return self._specs[name]

    def begin(self, name: str) -> None:
        """New documents go to ``name`` too from now on (every replica's next poll)."""
        self._set_aliases(*self._point(BUILDING_ALIAS, name))

    def switch(self, name: str) -> None:
        """Make ``name`` the active collection and end the building, in one step."""
        self._set_aliases(*self._point(ACTIVE_ALIAS, name), *self._drop(BUILDING_ALIAS))

    def abandon(self, name: str) -> None:
        """Stop sending new documents to ``name`` (if it is still the one being built)."""
        if self.building_name() == name:
            self._set_aliases(*self._drop(BUILDING_ALIAS))

    def _aliases(self) -> dict[str, str]:
        return {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}

    def _set_aliases(self, *operations: Any) -> None:
        """Apply alias operations together (Qdrant applies one call atomically)."""
        if operations:
            self.client.update_collection_aliases(change_aliases_operations=list(operations))

    def _drop(self, alias: str) -> list[Any]:
        if alias not in self._aliases():
            return []
        return [models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))]

    def _point(self, alias: str, collection: str) -> list[Any]:
        """Operations that make ``alias`` name ``collection``."""
        return [
            *self._drop(alias),
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
            ),
        ]
