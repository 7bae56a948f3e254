"""What the embedder computes, independent of model and vector store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

import numpy as np
import numpy.typing as npt

# Fixed namespace: the same chunk embedded by the same model always gets the
# same point id, so a redelivered batch overwrites its points instead of
# adding duplicates.
POINT_NAMESPACE = uuid5(NAMESPACE_URL, "https://docflow.dev/qdrant-point")


def point_id(document_id: UUID, chunk_index: int, model: str) -> UUID:
    """Deterministic Qdrant point id of one chunk's vector from one model."""
    return uuid5(POINT_NAMESPACE, f"{document_id}:{chunk_index}:{model}")


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


class Embedder(Protocol):
    """The model port: texts in, unit vectors out (CPU-bound, synchronous)."""

    model: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


class VectorStore(Protocol):
    """The vector-store port."""

    collection: str

    def upsert(self, points: Sequence[VectorPoint]) -> None: ...

    def delete_document(self, tenant_id: str, document_id: UUID) -> None:
        """Remove every point of one document."""
        ...

    def search(
        self, vector: npt.NDArray[np.float32], tenant_id: str, limit: int
    ) -> list[SearchHit]:
        """The tenant's chunks nearest to ``vector``, best first."""
        ...
