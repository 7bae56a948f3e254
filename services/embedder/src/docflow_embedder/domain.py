"""What the embedder computes, independent of model and vector store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

import numpy as np
import numpy.typing as npt

from docflow_embedder.keywords import SparseVector
from docflow_shared.events import EmbeddingSpec

# Fixed namespace: the same chunk embedded by the same model always gets the
# same point id, so a redelivered batch overwrites its points instead of
# adding duplicates.
POINT_NAMESPACE = uuid5(NAMESPACE_URL, "https://docflow.dev/qdrant-point")


def point_id(tenant_id: str, document_id: UUID, chunk_index: int, model: str) -> UUID:
    """Deterministic Qdrant point id of one chunk's vector from one model.

    The tenant is part of it: an event that names another tenant's document
    (forged) writes points of its own tenant beside that document's, and can
    never overwrite them. Points written before the tenant was part of the id
    keep their old ids (docs/architecture.md, "Delivery semantics").
    """
    return uuid5(POINT_NAMESPACE, f"{tenant_id}:{document_id}:{chunk_index}:{model}")


@dataclass(frozen=True)
class VectorPoint:
    id: UUID
    vector: npt.NDArray[np.float32]
    payload: dict[str, Any]


@dataclass(frozen=True)
class SearchHit:
    """One stored chunk that matches a query, best first."""

    document_id: UUID
    chunk_index: int
    page: int | None
    page_end: int | None
    score: float
    text: str


@dataclass(frozen=True)
class SearchFilters:
    """What a search is narrowed to, besides its tenant (which no filter can widen).

    Every field given must hold (AND); within one field any value may
    (``metadata``: each tuple is one key's terms, any of which may match).
    """

    metadata: tuple[tuple[str, ...], ...] = ()
    filenames: tuple[str, ...] = ()
    document_ids: tuple[UUID, ...] = ()
    # Uploaded at or after ``created_from``, before ``created_before``.
    created_from: datetime | None = None
    created_before: datetime | None = None

    def __bool__(self) -> bool:
        return bool(
            self.metadata
            or self.filenames
            or self.document_ids
            or self.created_from
            or self.created_before
        )


@dataclass(frozen=True)
class DocumentHits:
    """One document's best chunks for a query (the document-level result mode)."""

    document_id: UUID
    hits: list[SearchHit]


# dense: by meaning; keyword: by words (BM25); hybrid: both, fused by rank.
SearchMode = Literal["hybrid", "dense", "keyword"]
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "dense", "keyword")


@dataclass(frozen=True)
class Found:
    """A search's hits, the mode that found them, and why it is not the one asked for."""

    hits: list[SearchHit]
    mode: SearchMode
    note: str | None = None
    # Whether a reranker ordered (and scored) them.
    reranked: bool = False
    # In the document-level mode: each document once with its best chunks, best
    # first (``hits`` then holds the same chunks in that order).
    groups: list[DocumentHits] | None = None


class KeywordsMissing(Exception):
    """Keyword search asked of a collection without keyword vectors."""


class RerankFailed(Exception):
    """The reranker did not answer, or answered something unusable."""


class Reranker(Protocol):
    """A cross-encoder that scores how well each text answers the query."""

    async def rerank(self, query: str, texts: Sequence[str]) -> list[float]:
        """One score per text, in the order given (higher: more relevant); raises
        ``RerankFailed``."""
        ...


class Embedder(Protocol):
    """The model port: texts in, unit vectors out (CPU-bound, synchronous)."""

    model: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


class VectorStore(Protocol):
    """The vector-store port."""

    collection: str
    # Whether its chunks have keyword vectors (collections made before hybrid search do not).
    keywords: bool

    def upsert(self, points: Sequence[VectorPoint]) -> None: ...

    def delete_document(self, tenant_id: str, document_id: UUID) -> None:
        """Remove every point of one document of this tenant (none of another's)."""
        ...

    def owned_by_another_tenant(self, tenant_id: str, document_id: UUID) -> bool:
        """Whether points of ``document_id`` are stored, none of them under ``tenant_id``
        (a document's tenant never changes: an event that says so is forged)."""
        ...

    def stored(self, tenant_id: str, document_id: UUID, attempt: int) -> int:
        """How many chunks of the document's ``attempt`` are stored."""
        ...

    def search(
        self,
        vector: npt.NDArray[np.float32] | None,
        tenant_id: str,
        limit: int,
        keywords: SparseVector | None = None,
        filters: SearchFilters | None = None,
    ) -> list[SearchHit]:
        """The tenant's chunks nearest to ``vector``, or best matching ``keywords``, or
        both fused by rank, of those ``filters`` allow; best first."""
        ...

    def search_groups(
        self,
        vector: npt.NDArray[np.float32] | None,
        tenant_id: str,
        limit: int,
        group_size: int,
        keywords: SparseVector | None = None,
        filters: SearchFilters | None = None,
    ) -> list[DocumentHits]:
        """Up to ``limit`` of the tenant's documents, each once with its best
        ``group_size`` chunks (as ``search`` ranks them), the best document first."""
        ...


class ModelUnavailable(Exception):
    """The embedder cannot build the model asked for (unknown to its backend)."""


class Models(Protocol):
    """Builds (once) the model an ``EmbeddingSpec`` names."""

    def get(self, spec: EmbeddingSpec) -> Embedder:
        """The model; raises ``ModelUnavailable`` when the backend does not have it."""
        ...


@dataclass(frozen=True)
class Target:
    """A collection and the model whose vectors it holds."""

    embedder: Embedder
    vectors: VectorStore


@dataclass(frozen=True)
class Targets:
    """Where chunks go now.

    ``active`` serves searches and takes new documents; ``building`` is the
    collection a re-embedding is filling, which takes new documents too, so
    that it is complete when it becomes the active one.
    """

    active: Target
    building: Target | None = None


class Index(Protocol):
    """The port that says which collections are in use (every replica asks it)."""

    def targets(self) -> Targets: ...


@dataclass(frozen=True)
class FixedIndex:
    """One collection and one model, never re-embedded (tests, benchmarks)."""

    embedder: Embedder
    vectors: VectorStore

    def targets(self) -> Targets:
        return Targets(Target(self.embedder, self.vectors))
