"""DocumentUploaded → DocumentProgressed (extracting) and TextExtracted batches.

Chunks leave in batches as pages are read, so the embedder starts on a long
document before its extraction ends; the last batch says how many chunks
there are in all, so the embedder knows exactly when the document is done.

A retry (``DocumentRetryRequested``) extracts again, or, when it resumes at
embedding and the chunks of a finished extraction are stored, sends those
chunks again without reading the file. A cancelled attempt or a deleted
document stops before its next page; what it wrote so far is discarded.

With the OCR stage on (``Reading.ocr_range_pages``), a PDF's reading stops at
its first page without a text layer (``OcrWanted``): ocr_stage.py asks the OCR
consumer for those pages and, with their text, extracts the document again
(``extract_source`` with ``Source.ocr_texts``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, BinaryIO

from anyio import to_thread

from docflow_extractor.domain.chunking import ChunkBatcher, Chunking, Piece
from docflow_extractor.domain.cutting import CutDocument, InProcess
from docflow_extractor.domain.ocr import OcrNeeded, OcrStarted
from docflow_shared.blobstore import (
    BlobNotFoundError,
    BlobStore,
    BlobTooLargeError,
    chunks_key,
)
from docflow_shared.cancellations import Cancellations
from docflow_shared.errors import DocumentError
from docflow_shared.events import (
    Chunk,
    ContentType,
    DocumentFacts,
    DocumentProgressed,
    DocumentRetryRequested,
    DocumentUploaded,
    ErrorCode,
    Event,
    OcrRangeRead,
    Stage,
    TextExtracted,
)
from docflow_shared.messaging import Publish
from docflow_shared.trust import check_claim

logger = logging.getLogger(__name__)

ExtractionRequest = DocumentUploaded | DocumentRetryRequested

Opener = Callable[..., CutDocument]
"""Opens a stored document to read and cut it (in production: in the parser sandbox):
``(stream, content_type, charset)``, and ``ocr_texts=`` for the OCR stage's pages."""


@dataclass(frozen=True)
class Reading:
    """How the extractor reads and cuts documents: parser and chunks, batches, progress."""

    new_batcher: Callable[[], ChunkBatcher] = ChunkBatcher
    # How many progress events a long document reports while being read.
    progress_steps: int = 20
    opener: Opener = field(default_factory=lambda: InProcess(Chunking()))
    # An uploaded file larger than this is not read (nor downloaded, from S3).
    max_file_bytes: int | None = None
    # The OCR stage (ocr_stage.py): pages per OCR range; 0: OCR in the extractor.
    # The opener then stops at a page that needs OCR (``OcrNeeded``).
    ocr_range_pages: int = 0


@dataclass(frozen=True)
class Source:
    """Which stored file an extraction reads, and how."""

    key: str
    content_type: ContentType
    charset: str | None = None
    # The OCR stage's text of the pages without a text layer, by page number.
    ocr_texts: dict[int, str] | None = None

    @classmethod
    def of(cls, event: ExtractionRequest) -> Source:
        return cls(event.blob_key, event.content_type, event.charset)


class _Cancelled(Exception):
    """The attempt was cancelled (or the document deleted) while it was being extracted."""


class OcrWanted(Exception):
    """Page ``page`` of ``page_count`` needs OCR, which the OCR stage does."""

    def __init__(self, page: int, page_count: int) -> None:
        super().__init__(page, page_count)
        self.page, self.page_count = page, page_count


def document_facts(event: Event) -> DocumentFacts | None:
    """The upload's facts (filename, time, metadata) that the chunks carry to the
    vector store, from the event that started the extraction."""
    if isinstance(event, DocumentUploaded | DocumentRetryRequested):
        return event.facts
    if isinstance(event, OcrRangeRead):
        return event.document
    return None


@dataclass
class _ChunkSender:
    """Publishes one attempt's chunks in numbered batches; the last batch tells the total."""

    event: Event
    publish: Publish
    batcher: ChunkBatcher
    batches: int = 0
    chunks: int = 0
    facts: DocumentFacts | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.facts = document_facts(self.event)

    async def add_pieces(self, pieces: list[Piece], log: BinaryIO) -> None:
        """Number new pieces, keep them in the chunk log and send full batches."""
        for piece in pieces:
            chunk = piece.chunk(self.chunks)
            log.write(chunk.model_dump_json().encode() + b"\n")
            await self.add(chunk)

    async def add(self, chunk: Chunk) -> None:
        self.chunks += 1
        if ready := self.batcher.add(chunk):
            await self.publish(
                TextExtracted.caused_by(
                    self.event,
                    batch=self.batches,
                    chunks=ready,
                    last=False,
                    document=self.facts,
                )
            )
            self.batches += 1

    async def finish(self, *, pages: int | None) -> None:
        await self.publish(
            TextExtracted.caused_by(
                self.event,
                batch=self.batches,
                chunks=self.batcher.flush(),
                last=True,
                chunks_total=self.chunks,
                pages=pages,
                document=self.facts,
            )
        )


@contextmanager
def _stopped_after(document: CutDocument) -> Iterator[None]:
    """Close a document that has a worker behind it (the sandbox), whatever happens."""
    try:
        yield
    finally:
        close = getattr(document, "close", None)
        if close is not None:
            close()


async def extract_document(
    event: ExtractionRequest,
    *,
    blobs: BlobStore,
    publish: Publish,
    reading: Reading | None = None,
    cancellations: Cancellations | None = None,
) -> None:
    """Read the uploaded document page by page and publish its chunks.

    Raises ``DocumentError`` (encrypted, corrupt, ...) for a document that
    cannot be read; the consumer middleware turns that into its failure.
    Raises ``UntrustedEvent``, before reading anything, when the event's blob
    key is not the one of its tenant and document (forged).
    """
    check_claim(event)
    await extract_source(
        event,
        Source.of(event),
        blobs=blobs,
        publish=publish,
        reading=reading,
        cancellations=cancellations,
    )


async def extract_source(
    event: Event,
    source: Source,
    *,
    blobs: BlobStore,
    publish: Publish,
    reading: Reading | None = None,
    cancellations: Cancellations | None = None,
) -> None:
    """``extract_document`` of a checked ``source``; ``OcrWanted`` when the OCR stage
    is to read pages first."""
    cancellations = cancellations or Cancellations()
    try:
        await _extract(event, source, blobs, publish, reading or Reading(), cancellations)
    except _Cancelled:
        logger.info(
            "stopped extracting document %s (attempt %d): cancelled or deleted",
            event.document_id,
            event.attempt,
        )
        return
    if cancellations.deleted(event.tenant_id, event.document_id):
        blobs.delete(chunks_key(event.tenant_id, event.document_id))
        return
    logger.info("extracted document %s (attempt %d)", event.document_id, event.attempt)


async def _extract(
    event: Event,
    origin: Source,
    blobs: BlobStore,
    publish: Publish,
    reading: Reading,
    cancellations: Cancellations,
) -> None:
    try:
        # Off the event loop: from S3 this downloads the file (to a temporary one).
        source: BinaryIO = await to_thread.run_sync(
            partial(blobs.open, origin.key, max_bytes=reading.max_file_bytes)
        )
    except BlobNotFoundError:
        raise DocumentError(
            ErrorCode.INTERNAL,
            "the uploaded file is no longer in the blob store; upload it again",
        ) from None
    except BlobTooLargeError:
        raise DocumentError(
            ErrorCode.LIMIT_EXCEEDED,
            f"the file is larger than the limit of {reading.max_file_bytes} bytes",
        ) from None
    with source, blobs.writer(chunks_key(event.tenant_id, event.document_id)) as chunk_log:
        # Parsing is CPU work on untrusted input: it runs off the event loop,
        # one page at a time, so the consumer keeps heartbeating meanwhile.
        options: dict[str, Any] = {}
        if origin.ocr_texts is not None:
            options["ocr_texts"] = origin.ocr_texts
        document: CutDocument = await to_thread.run_sync(
            partial(reading.opener, source, origin.content_type, origin.charset, **options)
        )
        with _stopped_after(document):
            page_total = document.page_count
            units = page_total or 1  # unpaginated text is one unit of work
            report_every = max(1, math.ceil(units / reading.progress_steps))
            await publish(
                DocumentProgressed.caused_by(event, stage=Stage.EXTRACTING, done=0, total=units)
            )

            sender = _ChunkSender(event, publish, reading.new_batcher())
            pages_done = 0
            after_ocr = False
            # One list of chunks per page, then the document's last chunks (that
            # extra step counts past the last page, where no progress is reported).
            cut = document.pieces()
            while (pieces := await to_thread.run_sync(next, cut, None)) is not None:
                if cancellations.cancelled(event.tenant_id, event.document_id, event.attempt):
                    raise _Cancelled
                if isinstance(pieces, OcrNeeded):  # the OCR stage reads it (ocr_stage.py)
                    raise OcrWanted(pieces.page, page_total or 1)
                if isinstance(pieces, OcrStarted):  # "OCR page n of N"
                    await publish(
                        DocumentProgressed.caused_by(
                            event,
                            stage=Stage.EXTRACTING,
                            done=pages_done,
                            total=units,
                            ocr_page=pieces.page,
                        )
                    )
                    after_ocr = True
                    continue
                await sender.add_pieces(pieces, chunk_log)
                pages_done += 1
                # After a page read by OCR, at once: the status stops saying "OCR page n".
                if (pages_done % report_every == 0 or after_ocr) and pages_done < units:
                    after_ocr = False
                    await publish(
                        DocumentProgressed.caused_by(
                            event, stage=Stage.EXTRACTING, done=pages_done, total=units
                        )
                    )

            await sender.finish(pages=page_total)
            await publish(
                DocumentProgressed.caused_by(event, stage=Stage.EXTRACTING, done=units, total=units)
            )


async def resend_chunks(
    event: DocumentRetryRequested,
    *,
    blobs: BlobStore,
    publish: Publish,
    new_batcher: Callable[[], ChunkBatcher] = ChunkBatcher,
    cancellations: Cancellations | None = None,
) -> bool:
    """Send a finished extraction's stored chunks again, for a retry at embedding.

    ``False`` when no chunks are stored (extraction never finished): the
    caller extracts instead. Raises ``UntrustedEvent`` as ``extract_document``.
    """
    check_claim(event)
    cancellations = cancellations or Cancellations()
    try:
        stored = await to_thread.run_sync(
            blobs.open, chunks_key(event.tenant_id, event.document_id)
        )
    except BlobNotFoundError:
        return False
    with stored:
        await publish(DocumentProgressed.caused_by(event, stage=Stage.EXTRACTING, done=0, total=1))
        sender = _ChunkSender(event, publish, new_batcher())
        for line in stored:
            if cancellations.cancelled(event.tenant_id, event.document_id, event.attempt):
                return True
            await sender.add(Chunk.model_validate_json(line))
        await sender.finish(pages=None)
        await publish(DocumentProgressed.caused_by(event, stage=Stage.EXTRACTING, done=1, total=1))
    return True
