"""Points written before the tenant was part of their id, moved to their current ids.

``domain.point_id`` once derived a point's id from document, chunk index and
model only. Such points are still found by searches, deletions and counts
(which go by payload), but a chunk embedded again with the same model (a
retry at embedding) lands beside them under its new id, and searches find it
twice. ``python -m docflow_embedder rekey`` moves every point of every
collection to the id it has now; it is idempotent (a point already at its
id is left alone) and can be stopped and run again. The embedded store: run
it while the embedder is stopped (one process opens the folder); against a
server, at any time.
"""

from __future__ import annotations

import logging
from uuid import UUID

from qdrant_client import QdrantClient, models

from docflow_embedder.adapters.qdrant import QdrantIndex
from docflow_embedder.domain import Models, point_id

logger = logging.getLogger(__name__)

PAGE_SIZE = 256


def rekey_collection(client: QdrantClient, collection: str, model: str) -> int:
    """Move the points of ``collection`` (vectors of ``model``) to their current ids;
    returns how many moved."""
    moved = 0
    cursor: models.ExtendedPointId | None = None
    while True:
        records, cursor = client.scroll(
            collection, limit=PAGE_SIZE, offset=cursor, with_payload=True, with_vectors=True
        )
        current = {
            str(r.id): str(
                point_id(
                    r.payload["tenant_id"],
                    UUID(r.payload["document_id"]),
                    r.payload["chunk_index"],
                    model,
                )
            )
            for r in records
            if r.payload
        }
        stale = [r for r in records if r.payload and current[str(r.id)] != str(r.id)]
        if stale:
            present = {
                str(p.id)
                for p in client.retrieve(
                    collection, [current[str(r.id)] for r in stale], with_payload=False
                )
            }
            # A chunk embedded again since has its point already: keep that one.
            copies = [
                models.PointStruct(id=current[str(r.id)], vector=r.vector, payload=r.payload)
                for r in stale
                if current[str(r.id)] not in present and r.vector is not None
            ]
            if copies:
                client.upsert(collection, points=copies, wait=True)
            client.delete(collection, points_selector=[r.id for r in stale], wait=True)
            moved += len(stale)
        if cursor is None:
            return moved


def rekey(client: QdrantClient, models_: Models) -> dict[str, int]:
    """Every collection that names its model: how many points each had to move."""
    index = QdrantIndex(client, models_, index_payload=False)
    moved: dict[str, int] = {}
    for collection in client.get_collections().collections:
        if index.metadata_spec(collection.name) is None:
            continue
        model = index.target(collection.name).embedder.model
        moved[collection.name] = rekey_collection(client, collection.name, model)
        logger.info(
            "%s: %d points moved to their current ids", collection.name, moved[collection.name]
        )
    return moved
