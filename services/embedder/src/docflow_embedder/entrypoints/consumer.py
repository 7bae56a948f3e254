"""The embedder's subscriber: a thin adapter from Kafka to the handler."""

from __future__ import annotations

from faststream.kafka import KafkaBroker, KafkaRouter

from docflow_embedder.domain import Embedder, VectorStore
from docflow_embedder.handlers import embed_chunks, remove_vectors
from docflow_shared import topics
from docflow_shared.cancellations import Cancellations
from docflow_shared.events import DocumentDeleted, TextExtracted
from docflow_shared.messaging import Publish, subscriber

GROUP_ID = "docflow-embedder"


def register(
    router: KafkaRouter,
    *,
    embedder: Embedder,
    vectors: VectorStore,
    publish: Publish,
    cancellations: Cancellations,
) -> None:
    """Subscribe the embedder to chunk batches (failures fail their document)."""

    @subscriber(router, topics.EXTRACTED, group_id=GROUP_ID)
    async def on_text_extracted(event: TextExtracted) -> None:
        """Embed a batch of chunks into the vector store."""
        await embed_chunks(
            event,
            embedder=embedder,
            vectors=vectors,
            publish=publish,
            cancellations=cancellations,
        )


def register_deletions(broker: KafkaBroker | KafkaRouter, *, vectors: VectorStore) -> None:
    """Subscribe the embedder to deletions; a failed removal is retried, not reported."""

    @subscriber(broker, topics.DELETED, group_id=GROUP_ID)
    async def on_document_deleted(event: DocumentDeleted) -> None:
        """Remove a deleted document's vectors."""
        await remove_vectors(event, vectors=vectors)
