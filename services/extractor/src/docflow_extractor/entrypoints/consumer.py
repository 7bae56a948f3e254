"""The extractor's subscriber: a thin adapter from Kafka to the handler."""

from __future__ import annotations

from faststream.kafka import KafkaRouter

from docflow_extractor.handlers import Reading, resend_chunks
from docflow_extractor.ocr_stage import assemble, extract_or_request_ocr
from docflow_shared import topics
from docflow_shared.blobstore import BlobStore
from docflow_shared.cancellations import Cancellations
from docflow_shared.events import DocumentRetryRequested, DocumentUploaded, OcrRangeRead, Stage
from docflow_shared.messaging import Publish, subscriber
from docflow_shared.metrics import StageMetrics
from docflow_shared.retries import Parking, register_retries

GROUP_ID = "docflow-extractor"
# Retries in a group of their own: a process has one consumer per group, since
# a second member joining rebalances the first, and a long extraction that was
# running then is not committed but done again.
RETRIED_GROUP_ID = "docflow-extractor-retried"
# The OCR stage's answers (ocr_stage.py), put together into documents.
OCR_DONE_GROUP_ID = "docflow-extractor-ocr-done"


def register(
    router: KafkaRouter,
    *,
    blobs: BlobStore,
    publish: Publish,
    reading: Reading,
    cancellations: Cancellations,
    stages: StageMetrics,
    parking: Parking | None = None,
) -> None:
    """Subscribe the extractor to uploads and retries (and, with ``parking``, to its
    retry topics: messages whose handling met a transient error)."""

    async def extract(event: DocumentUploaded | DocumentRetryRequested) -> None:
        with stages.timed(Stage.EXTRACTING.value):
            await extract_or_request_ocr(
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

    async def start_attempt(event: DocumentRetryRequested) -> None:
        if event.from_stage is Stage.EMBEDDING and await resend_chunks(
            event,
            blobs=blobs,
            publish=publish,
            new_batcher=reading.new_batcher,
            cancellations=cancellations,
        ):
            return
        await extract(event)

    @subscriber(router, topics.RETRIED, group_id=RETRIED_GROUP_ID)
    async def on_retry_requested(event: DocumentRetryRequested) -> None:
        """Start a document's new attempt: resend its stored chunks, or extract again."""
        await start_attempt(event)

    async def put_together(event: OcrRangeRead) -> None:
        with stages.timed(Stage.EXTRACTING.value):
            await assemble(
                event,
                blobs=blobs,
                publish=publish,
                reading=reading,
                cancellations=cancellations,
            )

    @subscriber(router, topics.OCR_DONE, group_id=OCR_DONE_GROUP_ID)
    async def on_ocr_range_read(event: OcrRangeRead) -> None:
        """Keep a range's OCR text; with a document's last range, extract it."""
        await put_together(event)

    if parking is not None:

        async def uploaded(body: bytes) -> None:
            await extract(DocumentUploaded.model_validate_json(body))

        async def retried(body: bytes) -> None:
            await start_attempt(DocumentRetryRequested.model_validate_json(body))

        async def ocr_read(body: bytes) -> None:
            await put_together(OcrRangeRead.model_validate_json(body))

        register_retries(
            router,
            parking=parking,
            group_id=GROUP_ID,
            handlers={
                topics.UPLOADED: uploaded,
                topics.RETRIED: retried,
                topics.OCR_DONE: ocr_read,
            },
        )
