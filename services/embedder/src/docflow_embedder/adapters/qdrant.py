"""Vectors in Qdrant: local mode (an on-disk path) by default, a server by URL."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from qdrant_client import QdrantClient
from qdrant_client.http import models

from docflow_embedder.domain import VectorPoint


def collection_name(model: str, dimension: int) -> str:
    """One collection per embedding model and dimension; the name says which."""
    slug = re.sub(r"[^a-z0-9]+", "-", model.rsplit("/", 1)[-1].lower()).strip("-")
    return f"docflow_{slug}_{dimension}"


class QdrantVectorStore:
    """Writes chunk vectors to one collection, creating it if needed."""

    def __init__(self, client: QdrantClient, collection: str, dimension: int) -> None:
        self.client = client
        self.collection = collection
        if not client.collection_exists(collection):
            client.create_collection(
                collection,
                vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE),
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

    def check(self) -> Any:
        """Raises unless the collection answers."""
        return self.client.get_collection(self.collection)
