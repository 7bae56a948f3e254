"""The embedder's subscriber: a thin adapter from Kafka to the handler."""

from __future__ import annotations

from faststream.kafka import KafkaRouter

from docflow_embedder.domain import Embedder, VectorStore
from docflow_embedder.handlers import embed_chunks
from docflow_shared import topics
from docflow_shared.events import TextExtracted
from docflow_shared.messaging import Publish, subscriber

GROUP_ID = "docflow-embedder"


def register(
    router: KafkaRouter, *, embedder: Embedder, vectors: VectorStore, publish: Publish
) -> None:
    """Subscribe the embedder to chunk batches."""

    @subscriber(router, topics.EXTRACTED, group_id=GROUP_ID)
    async def on_text_extracted(event: TextExtracted) -> None:
        """Embed a batch of chunks into the vector store."""
        await embed_chunks(event, embedder=embedder, vectors=vectors, publish=publish)
