"""The extractor's subscriber: a thin adapter from Kafka to the handler."""

from __future__ import annotations

from collections.abc import Callable

from faststream.kafka import KafkaRouter

from docflow_extractor.domain.chunking import ChunkBatcher, ChunkingPolicy
from docflow_extractor.handlers import extract_document
from docflow_shared import topics
from docflow_shared.blobstore import BlobStore
from docflow_shared.events import DocumentUploaded
from docflow_shared.messaging import Publish, subscriber

GROUP_ID = "docflow-extractor"


def register(
    router: KafkaRouter,
    *,
    blobs: BlobStore,
    publish: Publish,
    policy: ChunkingPolicy,
    new_batcher: Callable[[], ChunkBatcher],
    progress_steps: int,
) -> None:
    """Subscribe the extractor to uploads."""

    @subscriber(router, topics.UPLOADED, group_id=GROUP_ID)
    async def on_document_uploaded(event: DocumentUploaded) -> None:
        """Extract an uploaded document's text into chunk batches."""
        await extract_document(
            event,
            blobs=blobs,
            publish=publish,
            policy=policy,
            new_batcher=new_batcher,
            progress_steps=progress_steps,
        )
