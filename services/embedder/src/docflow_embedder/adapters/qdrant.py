"""Vectors in Qdrant: local mode (an on-disk path) by default, a server by URL."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
from qdrant_client import QdrantClient
from qdrant_client.http import models

from docflow_embedder.domain import SearchHit, VectorPoint


def collection_name(model: str, dimension: int) -> str:
    """One collection per embedding model and dimension; the name says which."""
    slug = re.sub(r"[^a-z0-9]+", "-", model.rsplit("/", 1)[-1].lower()).strip("-")
    return f"docflow_{slug}_{dimension}"


class QdrantVectorStore:
    """Writes chunk vectors to one collection, creating it if needed."""

    def __init__(
        self, client: QdrantClient, collection: str, dimension: int, *, index_payload: bool = False
    ) -> None:
        """``index_payload``: index tenant and document id (a Qdrant server; local mode has
        no payload indexes and scans)."""
        self.client = client
        self.collection = collection
        if not client.collection_exists(collection):
            client.create_collection(
                collection,
                vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE),
            )
        if index_payload:
            # Every search filters by tenant and every deletion by document.
            for field in ("tenant_id", "document_id"):
                client.create_payload_index(
                    collection, field, models.PayloadSchemaType.KEYWORD, wait=True
                )

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Write points and return once Qdrant has applied them (``wait=True``)."""
        self.client.upsert(
            self.collection,
            points=[
                models.PointStruct(id=str(p.id), vector=p.vector.tolist(), payload=p.payload)
                for p in points
            ],
            wait=True,
        )

    def delete_document(self, tenant_id: str, document_id: UUID) -> None:
        """Remove every point of one document (returns once applied)."""
        self.client.delete(
            self.collection,
            points_selector=models.FilterSelector(
                filter=models.Filter(
                    must=[
                        models.FieldCondition(
                            key="tenant_id", match=models.MatchValue(value=tenant_id)
                        ),
                        models.FieldCondition(
                            key="document_id", match=models.MatchValue(value=str(document_id))
                        ),
                    ]
                )
            ),
            wait=True,
        )

    def search(
        self, vector: npt.NDArray[np.float32], tenant_id: str, limit: int
    ) -> list[SearchHit]:
        """The tenant's chunks nearest to ``vector`` (cosine), best first."""
        found = self.client.query_points(
            self.collection,
            query=vector.tolist(),
            query_filter=models.Filter(
                must=[
                    models.FieldCondition(key="tenant_id", match=models.MatchValue(value=tenant_id))
                ]
            ),
            limit=limit,
            with_payload=True,
        )
        return [
            SearchHit(
                document_id=UUID(point.payload["document_id"]),
                chunk_index=point.payload["chunk_index"],
                page=point.payload.get("page"),
                page_end=point.payload.get("page_end"),
                score=point.score,
                text=point.payload["text"],
            )
            for point in found.points
            if point.payload is not None
        ]

    def check(self) -> Any:
        """Raises unless the collection answers."""
        return self.client.get_collection(self.collection)
