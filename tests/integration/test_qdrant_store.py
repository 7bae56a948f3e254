"""The Qdrant adapter on real Qdrant local mode."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import numpy as np
from qdrant_client import QdrantClient

from docflow_embedder.adapters.minilm import MiniLMEmbedder
from docflow_embedder.adapters.qdrant import QdrantVectorStore, collection_name
from docflow_embedder.domain import FixedIndex, VectorPoint, point_id
from docflow_embedder.entrypoints.http import search_route
from docflow_shared.auth import INTERNAL_TOKEN_HEADER

TOKEN = "internal-token-for-the-tests"


def points(document_id: uuid.UUID, n: int) -> list[VectorPoint]:
    rng = np.random.default_rng(7)
    return [
        VectorPoint(
            id=point_id("t", document_id, i, "m"),
            vector=rng.normal(size=8).astype(np.float32),
            payload={"document_id": str(document_id), "chunk_index": i, "text": f"chunk {i}"},
        )
        for i in range(n)
    ]


def test_collection_name_says_model_and_dimension() -> None:
    assert (
        collection_name("sentence-transformers/all-MiniLM-L6-v2", 384)
        == "docflow_all-minilm-l6-v2_384_bm25v1"
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


TEXTS = [
    "The invoice is due within thirty days of delivery.",
    "Glaciers in the Alps have lost half their volume since 1900.",
    "Preheat the oven to 200 degrees and bake the bread for forty minutes.",
]


async def test_search_finds_the_closest_chunk_of_the_callers_tenant_only(tmp_path: Path) -> None:
    model = MiniLMEmbedder()
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    try:
        store = QdrantVectorStore(
            client, collection_name(model.model, model.dimension), model.dimension
        )
        for tenant, texts in (
            ("acme", TEXTS),
            ("globex", ["Ice sheets and glaciers are melting."]),
        ):
            document_id = uuid.uuid4()
            store.upsert(
                [
                    VectorPoint(
                        id=point_id(tenant, document_id, i, model.model),
                        vector=vector,
                        payload={
                            "tenant_id": tenant,
                            "document_id": str(document_id),
                            "chunk_index": i,
                            "page": 1,
                            "page_end": 1,
                            "text": text,
                        },
                    )
                    for i, (text, vector) in enumerate(zip(texts, model.embed(texts), strict=True))
                ]
            )
        route = search_route(FixedIndex(model, store), TOKEN)[1]
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=route),
            base_url="http://embedder",
            headers={INTERNAL_TOKEN_HEADER: TOKEN},
        ) as http:
            found = await http.get(
                "/internal/search", params={"q": "how fast is the ice melting", "tenant": "acme"}
            )
            assert found.status_code == 200
            hits = found.json()["hits"]
            assert hits[0]["text"] == TEXTS[1]
            assert {h["text"] for h in hits} == set(TEXTS)  # globex's chunk is not acme's
            assert hits[0]["score"] > hits[1]["score"]
            assert found.json()["model"] == model.model

            one = await http.get(
                "/internal/search", params={"q": "when to pay", "tenant": "acme", "limit": 1}
            )
            assert [h["text"] for h in one.json()["hits"]] == [TEXTS[0]]
            missing = await http.get("/internal/search", params={"tenant": "acme"})
            assert missing.status_code == 422
            # Without the internal token no one may name a tenant (issue 20, finding 4).
            for headers in ({INTERNAL_TOKEN_HEADER: ""}, {INTERNAL_TOKEN_HEADER: "x" * 32}):
                refused = await http.get(
                    "/internal/search", params={"q": "pay", "tenant": "acme"}, headers=headers
                )
                assert refused.status_code == 401
    finally:
        client.close()
