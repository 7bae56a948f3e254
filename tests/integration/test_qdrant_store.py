"""The Qdrant adapter on real Qdrant local mode."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient

from docflow_embedder.adapters.qdrant import QdrantVectorStore, collection_name
from docflow_embedder.domain import VectorPoint, point_id


def points(document_id: uuid.UUID, n: int) -> list[VectorPoint]:
    rng = np.random.default_rng(7)
    return [
        VectorPoint(
            id=point_id(document_id, i, "m"),
            vector=rng.normal(size=8).astype(np.float32),
            payload={"document_id": str(document_id), "chunk_index": i, "text": f"chunk {i}"},
        )
        for i in range(n)
    ]


def test_collection_name_says_model_and_dimension() -> None:
    assert (
        collection_name("sentence-transformers/all-MiniLM-L6-v2", 384)
        == "docflow_all-minilm-l6-v2_384"
    )


def test_upserting_the_same_chunks_twice_keeps_one_point_each(tmp_path: Path) -> None:
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    try:
        store = QdrantVectorStore(client, "docflow_test_8", 8)
        document_id = uuid.uuid4()
        batch = points(document_id, 5)
        store.upsert(batch)
        store.upsert(batch)
        assert client.count("docflow_test_8").count == 5
        hit = client.query_points("docflow_test_8", query=batch[3].vector.tolist(), limit=1).points[
            0
        ]
        assert hit.id == str(batch[3].id)
        assert hit.payload == batch[3].payload
    finally:
        client.close()


def test_points_survive_reopening_the_local_store(tmp_path: Path) -> None:
    path = str(tmp_path / "qdrant")
    client = QdrantClient(path=path)
    QdrantVectorStore(client, "docflow_test_8", 8).upsert(points(uuid.uuid4(), 3))
    client.close()
    reopened = QdrantClient(path=path)
    try:
        QdrantVectorStore(reopened, "docflow_test_8", 8)  # existing collection is kept
        assert reopened.count("docflow_test_8").count == 3
    finally:
        reopened.close()
