"""Qdrant's local mode from several threads at once, as the embedder calls it: its
chunk consumer, its retry consumer, a re-embedding and searches each reach Qdrant
from a worker thread.

The local mode of qdrant-client has no locking of its own; the fault suite found
documents failing with "cannot start a transaction within a transaction" and
"index … is out of bounds" when a retry was written while new chunks were. The
bare client (``QdrantClient(path=…)``) fails this test every time; the embedder's
``local_client`` must not.
"""

from __future__ import annotations

import threading
from pathlib import Path
from uuid import uuid4

import numpy as np
import pytest

from docflow_embedder.adapters.qdrant import QdrantVectorStore, local_client
from docflow_embedder.domain import VectorPoint, point_id

pytestmark = pytest.mark.unit

THREADS = 4
DOCUMENTS_PER_THREAD = 8
CHUNKS = 12


def _hammer(store: QdrantVectorStore) -> tuple[list[BaseException], int]:
    """Each thread writes documents, counts them, searches and deletes every other one."""
    errors: list[BaseException] = []
    kept: list[int] = []
    start = threading.Barrier(THREADS)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(CHUNKS, 8)).astype(np.float32)

    def work() -> None:
        start.wait()
        mine = 0
        try:
            for n in range(DOCUMENTS_PER_THREAD):
                document = uuid4()
                store.upsert(
                    [
                        VectorPoint(
                            id=point_id("t", document, i, "m"),
                            vector=vectors[i],
                            payload={
                                "tenant_id": "t",
                                "document_id": str(document),
                                "chunk_index": i,
                                "attempt": 1,
                                "text": f"chunk {i}",
                            },
                        )
                        for i in range(CHUNKS)
                    ]
                )
                assert store.stored("t", document, 1) == CHUNKS
                store.search(vectors[0], "t", 3)
                if n % 2:
                    store.delete_document("t", document)
                else:
                    mine += 1
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        kept.append(mine)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors, sum(kept)


def test_the_local_client_takes_one_call_at_a_time(tmp_path: Path) -> None:
    client = local_client(tmp_path / "qdrant")
    try:
        store = QdrantVectorStore(client, "chunks", 8)
        errors, kept = _hammer(store)
        assert errors == []
        assert store.count() == kept * CHUNKS
    finally:
        client.close()
    # What was written is on disk: a new client (a restarted embedder) reads it back.
    again = local_client(tmp_path / "qdrant")
    try:
        assert QdrantVectorStore(again, "chunks", 8).count() == kept * CHUNKS
    finally:
        again.close()
