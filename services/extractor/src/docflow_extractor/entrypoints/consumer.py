"""The extractor's subscriber: a thin adapter from Kafka to the handler."""

from __future__ import annotations

from faststream.kafka import KafkaRouter

from docflow_extractor.handlers import Reading, extract_document, resend_chunks
from docflow_shared import topics
from docflow_shared.blobstore import BlobStore
from docflow_shared.cancellations import Cancellations
from docflow_shared.events import DocumentRetryRequested, DocumentUploaded, Stage
from docflow_shared.messaging import Publish, subscriber

GROUP_ID = "docflow-extractor"


def register(
    router: KafkaRouter,
    *,
    blobs: BlobStore,
    publish: Publish,
    reading: Reading,
    cancellations: Cancellations,
) -> None:
    """Subscribe the extractor to uploads and retries."""

    async def extract(event: DocumentUploaded | DocumentRetryRequested) -> None:
        await extract_document(
            event,
            blobs=blobs,
            publish=publish,
            reading=reading,
            cancellations=cancellations,
        )

    @subscriber(router, topics.UPLOADED, group_id=GROUP_ID)
    async def on_document_uploaded(event: DocumentUploaded) -> None:
        """Extract an uploaded document's text into chunk batches."""
        await extract(event)

    @subscriber(router, topics.RETRIED, group_id=GROUP_ID)
    async def on_retry_requested(event: DocumentRetryRequested) -> None:
        """Start a document's new attempt: resend its stored chunks, or extract again."""
        if event.from_stage is Stage.EMBEDDING and await resend_chunks(
            event,
            blobs=blobs,
            publish=publish,
            new_batcher=reading.new_batcher,
            cancellations=cancellations,
        ):
            return
        await extract(event)
