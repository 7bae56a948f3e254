"""OCR as a stage of its own: a scan's pages read by OCR in ranges, spread over replicas.

OCR costs one to two orders of magnitude more CPU a page than reading a text
layer, so with ``DOCFLOW_OCR_RANGE_PAGES`` > 0 it leaves the extractor:

1. The extractor reads a PDF as always, but stops at the first page without a
   text layer (``OcrWanted``). It asks for that page and all after it to be
   read by OCR in ranges of ``DOCFLOW_OCR_RANGE_PAGES`` pages
   (``request_ocr``: one ``OcrRangeRequested`` a range). A document whose
   pages all have text never gets here: it goes the old way, unchanged.
2. The OCR consumer (``python -m docflow_extractor ocr``: the extractor's
   image, its own Deployment, scaled on the lag of its group) reads a range
   in its sandbox (``read_range``): the pages of it without a text layer, by
   OCR, each announced as "OCR page n", cancellations checked before each;
   it answers ``OcrRangeRead`` with their text.
3. The extractor keeps each answer in the blob store (``assemble``). With
   the last range of the attempt it reads the document again, now taking
   those pages' text from the answers, and cuts and sends it like any other
   document: only this reading numbers chunks, so their numbers and total are
   exact. Ranges are kept per attempt: those of an older attempt never mix
   with a retry's.

A range that fails the document for good is answered as failed
(``OcrRangeRead.failed``, entrypoints/ocr.py). The extractor then notes the
attempt as failed in the blob store (``failed_key``) and deletes its kept
answers; later answers of that attempt are dropped, and OCR consumers skip its
ranges not read yet (answering them as failed too). Once every range of the
attempt has answered, the note goes as well.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from functools import partial
from typing import BinaryIO, Protocol

from anyio import to_thread

from docflow_extractor.domain.documents import Page
from docflow_extractor.domain.ocr import OcrStarted
from docflow_extractor.handlers import (
    ExtractionRequest,
    OcrWanted,
    Reading,
    Source,
    document_facts,
    extract_document,
    extract_source,
    title_from,
)
from docflow_shared.blobstore import BlobNotFoundError, BlobStore, original_key
from docflow_shared.cancellations import Cancellations
from docflow_shared.errors import DocumentError
from docflow_shared.events import (
    DocumentProgressed,
    ErrorCode,
    OcrPage,
    OcrRangeRead,
    OcrRangeRequested,
    Stage,
)
from docflow_shared.events.documents import MAX_OCR_RANGE_TEXT_CHARS, MAX_OCR_RANGES
from docflow_shared.messaging import Publish
from docflow_shared.trust import check_claim, check_tenant

logger = logging.getLogger(__name__)


class OcrRange(Protocol):
    """A range of pages being read by OCR: each page announced, then its text."""

    def pages(self) -> Iterator[OcrStarted | Page]: ...


RangeOpener = Callable[[BinaryIO, int, int], OcrRange]
"""Opens a stored PDF to read pages first..last by OCR (in production: in the sandbox)."""


def ranges(first: int, page_count: int, range_pages: int) -> list[tuple[int, int]]:
    """Pages ``first``..``page_count`` in ranges of ``range_pages`` (more where there
    would be more than ``MAX_OCR_RANGES`` ranges), as (first, last) pairs."""
    size = max(range_pages, math.ceil((page_count - first + 1) / MAX_OCR_RANGES), 1)
    return [
        (start, min(start + size - 1, page_count)) for start in range(first, page_count + 1, size)
    ]


async def extract_or_request_ocr(
    event: ExtractionRequest,
    *,
    blobs: BlobStore,
    publish: Publish,
    reading: Reading,
    cancellations: Cancellations,
) -> None:
    """``extract_document``; where a page needs OCR, its ranges are requested instead."""
    try:
        await extract_document(
            event, blobs=blobs, publish=publish, reading=reading, cancellations=cancellations
        )
    except OcrWanted as wanted:
        await request_ocr(event, wanted, publish=publish, range_pages=reading.ocr_range_pages)


async def request_ocr(
    event: ExtractionRequest, wanted: OcrWanted, *, publish: Publish, range_pages: int
) -> None:
    """Ask for pages ``wanted.page``..the last to be read by OCR, a range at a time."""
    pages = ranges(wanted.page, wanted.page_count, range_pages)
    # The status service: the document now waits for OCR of these pages.
    await publish(
        DocumentProgressed.caused_by(
            event,
            stage=Stage.EXTRACTING,
            done=wanted.page - 1,
            total=wanted.page_count,
            ocr_from=wanted.page,
        )
    )
    for index, (first, last) in enumerate(pages):
        await publish(
            OcrRangeRequested.caused_by(
                event,
                content_type=event.content_type,
                blob_key=event.blob_key,
                first=first,
                last=last,
                page_count=wanted.page_count,
                range_index=index,
                range_count=len(pages),
                document=document_facts(event),
            )
        )
    logger.info(
        "document %s (attempt %d): pages %d-%d to OCR in %d ranges",
        event.document_id,
        event.attempt,
        wanted.page,
        wanted.page_count,
        len(pages),
    )


async def read_range(
    event: OcrRangeRequested,
    *,
    blobs: BlobStore,
    publish: Publish,
    open_range: RangeOpener,
    cancellations: Cancellations,
    max_file_bytes: int | None = None,
) -> int | None:
    """Read a range's pages without text by OCR and answer with their text: how many.

    None when the attempt was cancelled (or the document deleted): nothing is answered.
    """
    check_claim(event)

    def stopped() -> bool:
        return cancellations.cancelled(event.tenant_id, event.document_id, event.attempt)

    if stopped():
        return None
    if await to_thread.run_sync(attempt_failed, blobs, event):
        # Another range failed the attempt: this one would be read for nothing.
        await publish(
            OcrRangeRead.caused_by(
                event,
                range_index=event.range_index,
                range_count=event.range_count,
                pages=[],
                failed=True,
            )
        )
        logger.info(
            "OCR of document %s (attempt %d), pages %d-%d: skipped, the attempt failed",
            event.document_id,
            event.attempt,
            event.first,
            event.last,
        )
        return None
    try:
        source = await to_thread.run_sync(
            partial(blobs.open, event.blob_key, max_bytes=max_file_bytes)
        )
    except BlobNotFoundError:
        if stopped():
            return None
        raise DocumentError(
            ErrorCode.INTERNAL, "the uploaded file is no longer in the blob store; upload it again"
        ) from None
    read: list[OcrPage] = []
    with source:
        reader = await to_thread.run_sync(open_range, source, event.first, event.last)
        pages = reader.pages()
        try:
            while (item := await to_thread.run_sync(next, pages, None)) is not None:
                if stopped():
                    return None
                if isinstance(item, OcrStarted):
                    await publish(
                        DocumentProgressed.caused_by(
                            event,
                            stage=Stage.EXTRACTING,
                            done=item.page - 1,
                            total=event.page_count,
                            ocr_page=item.page,
                        )
                    )
                    continue
                read.append(OcrPage(number=item.number or event.first, text=item.text))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()
    if sum(len(page.text) for page in read) > MAX_OCR_RANGE_TEXT_CHARS:
        raise DocumentError(
            ErrorCode.LIMIT_EXCEEDED,
            f"OCR read more than {MAX_OCR_RANGE_TEXT_CHARS} characters on pages "
            f"{event.first}-{event.last}; lower DOCFLOW_OCR_RANGE_PAGES",
        )
    await publish(
        OcrRangeRead.caused_by(
            event,
            range_index=event.range_index,
            range_count=event.range_count,
            pages=read,
            document=event.document,
        )
    )
    logger.info(
        "OCR of document %s (attempt %d), pages %d-%d: %d pages read",
        event.document_id,
        event.attempt,
        event.first,
        event.last,
        len(read),
    )
    return len(read)


def range_key(event: OcrRangeRead, index: int) -> str:
    """Where the assembler keeps a range's answer until the document's last one arrives."""
    return f"{event.tenant_id}/{event.document_id}/ocr/{event.attempt}/{index}.json"


def failed_key(event: OcrRangeRead | OcrRangeRequested) -> str:
    """The note that a range failed the attempt: the ranges answered since, as JSON."""
    return f"{event.tenant_id}/{event.document_id}/ocr/{event.attempt}/failed.json"


def _answered_after_failure(blobs: BlobStore, event: OcrRangeRead) -> set[int] | None:
    """The ranges of a failed attempt answered so far; None if the attempt did not fail."""
    try:
        with blobs.open(failed_key(event), max_bytes=1024 * 1024) as stored:
            kept = json.load(stored)
    except BlobNotFoundError:
        return None
    except ValueError:  # unreadable (never written so by docflow): the attempt failed
        return set()
    return {i for i in kept if isinstance(i, int)} if isinstance(kept, list) else set()


def attempt_failed(blobs: BlobStore, event: OcrRangeRead | OcrRangeRequested) -> bool:
    """Whether a range of this attempt failed the document (the extractor noted it)."""
    try:
        blobs.open(failed_key(event), max_bytes=1024 * 1024).close()
    except BlobNotFoundError:
        return False
    return True


def _drop_failed(blobs: BlobStore, event: OcrRangeRead, answered: set[int] | None) -> None:
    """An answer of a failed attempt (or the failure itself): delete the attempt's
    kept answers and note this one; once all ranges have answered, the note goes."""
    if answered is None:  # the failure: every range with a kept answer has answered
        answered = set()
        for index in range(event.range_count):
            try:
                blobs.open(range_key(event, index)).close()
            except BlobNotFoundError:
                continue
            answered.add(index)
    answered.add(event.range_index)
    for index in range(event.range_count):
        blobs.delete(range_key(event, index))
    if len(answered) >= event.range_count:
        blobs.delete(failed_key(event))
        return
    with blobs.writer(failed_key(event)) as out:
        out.write(json.dumps(sorted(answered)).encode())


def _stored_texts(blobs: BlobStore, event: OcrRangeRead) -> dict[int, str] | None:
    """Every stored range's page texts, or None while a range is missing."""
    texts: dict[int, str] = {}
    for index in range(event.range_count):
        try:
            with blobs.open(range_key(event, index)) as stored:
                answer = json.load(stored)
        except BlobNotFoundError:
            return None
        texts.update((OcrPage.model_validate(page).number, page["text"]) for page in answer)
    return texts


async def assemble(
    event: OcrRangeRead,
    *,
    blobs: BlobStore,
    publish: Publish,
    reading: Reading,
    cancellations: Cancellations,
) -> bool:
    """Keep a range's answer; with the attempt's last one, extract the document
    with its OCR text. True when this answer completed the document."""
    check_tenant(event)
    if cancellations.cancelled(event.tenant_id, event.document_id, event.attempt):
        # Answers kept before the cancellation (or deletion) go too.
        await to_thread.run_sync(_forget, blobs, event)
        return False
    answered = await to_thread.run_sync(_answered_after_failure, blobs, event)
    if event.failed or answered is not None:
        # The attempt failed (here, or in a range before): nothing is put together.
        await to_thread.run_sync(_drop_failed, blobs, event, answered)
        logger.info(
            "document %s (attempt %d): OCR range %d of %d dropped, the attempt failed",
            event.document_id,
            event.attempt,
            event.range_index + 1,
            event.range_count,
        )
        return False
    answer = json.dumps([page.model_dump() for page in event.pages]).encode()
    with blobs.writer(range_key(event, event.range_index)) as out:
        out.write(answer)
    texts = await to_thread.run_sync(_stored_texts, blobs, event)
    if texts is None:
        return False
    source = Source(
        original_key(event.tenant_id, event.document_id),
        "application/pdf",
        ocr_texts=texts,
        title=title_from(event.document.filename if event.document else None),
    )
    await extract_source(
        event,
        source,
        blobs=blobs,
        publish=publish,
        reading=reading,
        cancellations=cancellations,
    )
    await to_thread.run_sync(_forget, blobs, event)
    return True


def _forget(blobs: BlobStore, event: OcrRangeRead) -> None:
    """Delete the attempt's kept answers (those there are), and its failure note."""
    for index in range(event.range_count):
        blobs.delete(range_key(event, index))
    blobs.delete(failed_key(event))
