"""DocumentUploaded → DocumentProgressed (extracting) and TextExtracted batches.

Chunks leave in batches as pages are read, so the embedder starts on a long
document before its extraction ends; the last batch says how many chunks
there are in all, so the embedder knows exactly when the document is done.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import BinaryIO

from anyio import to_thread

from docflow_extractor.domain.chunking import ChunkBatcher, ChunkingPolicy, split_text
from docflow_extractor.domain.documents import Document, Page, open_document
from docflow_shared.blobstore import BlobNotFoundError, BlobStore, chunks_key
from docflow_shared.errors import DocumentError
from docflow_shared.events import (
    Chunk,
    DocumentProgressed,
    DocumentUploaded,
    ErrorCode,
    Stage,
    TextExtracted,
)
from docflow_shared.messaging import Publish


def _next_page(pages: Iterator[Page]) -> Page | None:
    return next(pages, None)


async def extract_document(
    event: DocumentUploaded,
    *,
    blobs: BlobStore,
    publish: Publish,
    policy: ChunkingPolicy,
    new_batcher: Callable[[], ChunkBatcher] = ChunkBatcher,
    progress_steps: int = 20,
) -> None:
    """Read the uploaded document page by page and publish its chunks.

    Raises ``DocumentError`` (encrypted, corrupt, ...) for a document that
    cannot be read; the consumer middleware turns that into its failure.
    """
    try:
        source: BinaryIO = blobs.open(event.blob_key)
    except BlobNotFoundError:
        raise DocumentError(
            ErrorCode.INTERNAL,
            "the uploaded file is no longer in the blob store; upload it again",
        ) from None
    with source, blobs.writer(chunks_key(event.tenant_id, event.document_id)) as chunk_log:
        # Parsing is CPU work on untrusted input: it runs off the event loop,
        # one page at a time, so the consumer keeps heartbeating meanwhile.
        document: Document = await to_thread.run_sync(
            open_document, source, event.content_type, event.charset
        )
        page_total = document.page_count
        units = page_total or 1  # unpaginated text is one unit of work
        report_every = max(1, math.ceil(units / progress_steps))
        await publish(
            DocumentProgressed.caused_by(event, stage=Stage.EXTRACTING, done=0, total=units)
        )

        batcher = new_batcher()
        batch_number = 0
        chunk_count = 0
        pages_done = 0
        pages = document.pages()
        while (page := await to_thread.run_sync(_next_page, pages)) is not None:
            for start, end in split_text(page.text, policy):
                chunk = Chunk(
                    index=chunk_count,
                    text=page.text[start:end],
                    page=page.number,
                    char_start=start,
                    char_end=end,
                )
                chunk_count += 1
                chunk_log.write(chunk.model_dump_json().encode() + b"\n")
                if ready := batcher.add(chunk):
                    await publish(
                        TextExtracted.caused_by(event, batch=batch_number, chunks=ready, last=False)
                    )
                    batch_number += 1
            pages_done += 1
            if pages_done % report_every == 0 and pages_done < units:
                await publish(
                    DocumentProgressed.caused_by(
                        event, stage=Stage.EXTRACTING, done=pages_done, total=units
                    )
                )

        await publish(
            TextExtracted.caused_by(
                event,
                batch=batch_number,
                chunks=batcher.flush(),
                last=True,
                chunks_total=chunk_count,
                pages=page_total,
            )
        )
        await publish(
            DocumentProgressed.caused_by(event, stage=Stage.EXTRACTING, done=units, total=units)
        )
