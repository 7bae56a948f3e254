"""Points of the old id scheme (no tenant in the id) moved to their current ids, on
Qdrant's local mode and on Qdrant Edge."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4, uuid5

import numpy as np
import pytest
from qdrant_client import QdrantClient
from unit.embedder.test_reindex import OLD, FakeModels

from docflow_embedder.adapters.embedded import open_embedded
from docflow_embedder.adapters.qdrant import QdrantIndex
from docflow_embedder.domain import POINT_NAMESPACE, VectorPoint, point_id
from docflow_embedder.rekey import rekey


def old_id(document_id: UUID, chunk_index: int, model: str) -> UUID:
    """The id ``point_id`` gave before the tenant was part of it."""
    return uuid5(POINT_NAMESPACE, f"{document_id}:{chunk_index}:{model}")


def chunk(tenant: str, document_id: UUID, index: int, *, attempt: int = 1) -> dict:
    return {
        "tenant_id": tenant,
        "document_id": str(document_id),
        "chunk_index": index,
        "text": f"chunk {index}",
        "attempt": attempt,
    }


@pytest.mark.parametrize("engine", ["local", "edge"])
def test_old_points_move_to_their_current_ids_once(engine: str, tmp_path: Path) -> None:
    client = QdrantClient(":memory:") if engine == "local" else open_embedded(tmp_path / "qdrant")
    index = QdrantIndex(client, FakeModels(), index_payload=engine == "edge")
    store = index.create("docflow_old_4", OLD, 4)
    legacy, again = uuid4(), uuid4()
    vector = np.ones(4, dtype=np.float32)
    store.upsert(
        [
            VectorPoint(old_id(legacy, i, "old-model"), vector, chunk("acme", legacy, i))
            for i in range(3)
        ]
        + [VectorPoint(old_id(again, 0, "old-model"), vector, chunk("globex", again, 0))]
        # ``again`` was embedded again after the upgrade: its new point is newer.
        + [
            VectorPoint(
                point_id("globex", again, 0, "old-model"),
                vector,
                chunk("globex", again, 0, attempt=2),
            )
        ]
    )
    assert rekey(client, FakeModels()) == {"docflow_old_4": 4}
    points = {p.id: p.payload for p in store.page(None, 100)[0]}
    assert set(points) == {
        *(point_id("acme", legacy, i, "old-model") for i in range(3)),
        point_id("globex", again, 0, "old-model"),
    }
    assert points[point_id("globex", again, 0, "old-model")]["attempt"] == 2
    assert rekey(client, FakeModels()) == {"docflow_old_4": 0}
    client.close()
