"""The extractor's handler with a recording publisher and a real local blob store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docflow_extractor.domain.chunking import Chunking
from docflow_extractor.domain.cutting import InProcess
from docflow_extractor.domain.ocr import GreyPicture, OcrPolicy, with_ocr
from docflow_extractor.handlers import Reading, extract_document
from docflow_shared.blobstore import LocalBlobStore, chunks_key
from docflow_shared.errors import DocumentError
from docflow_shared.events import (
    DocumentProgressed,
    DocumentUploaded,
    ErrorCode,
    Event,
    Stage,
    TextExtracted,
)
from support.uploads import stored_upload

KAFKA_MESSAGE_LIMIT = 1024 * 1024
READING = Reading()  # the default chunking, tokenizer loaded once


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Event]) -> list:
        return [e for e in self.events if isinstance(e, kind)]


async def extract(blobs: LocalBlobStore, event: DocumentUploaded) -> Recorder:
    publish = Recorder()
    await extract_document(
        event,
        blobs=blobs,
        publish=publish,
        reading=READING,
    )
    return publish


async def test_a_long_pdf_reports_progress_in_steps_and_sends_ordered_batches(
    tmp_path: Path, corpus: Path
) -> None:
    blobs = LocalBlobStore(tmp_path)
    event = stored_upload(blobs, corpus / "pdf" / "GeoTopo-komprimiert.pdf", "application/pdf")
    published = await extract(blobs, event)

    progress = published.of(DocumentProgressed)
    assert all(p.stage is Stage.EXTRACTING and p.total == 117 for p in progress)
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert progress[0].done == 0
    assert progress[-1].done == 117
    assert len({p.done for p in progress}) >= 10, "a 117-page PDF must report many steps"

    batches = published.of(TextExtracted)
    assert [b.batch for b in batches] == list(range(len(batches)))
    assert [b.last for b in batches] == [False] * (len(batches) - 1) + [True]
    indexes = [c.index for b in batches for c in b.chunks]
    assert indexes == list(range(len(indexes)))
    assert batches[-1].chunks_total == len(indexes) > 100
    assert batches[-1].pages == 117
    assert {c.page for b in batches for c in b.chunks} <= set(range(1, 118))
    for batch in batches:
        assert len(batch.model_dump_json().encode()) < KAFKA_MESSAGE_LIMIT / 3
    # Chunks leave while pages are still being read (pipelining).
    first_batch = published.events.index(batches[0])
    assert any(
        isinstance(e, DocumentProgressed) and e.done < 117 for e in published.events[first_batch:]
    )


async def test_the_chunks_are_kept_in_the_blob_store(tmp_path: Path, corpus: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    event = stored_upload(blobs, corpus / "pdf" / "pdflatex-4-pages.pdf", "application/pdf")
    published = await extract(blobs, event)
    sent = [c for b in published.of(TextExtracted) for c in b.chunks]
    with blobs.open(chunks_key(event.tenant_id, event.document_id)) as log:
        kept = [json.loads(line) for line in log]
    assert [c["text"] for c in kept] == [c.text for c in sent]


async def test_an_image_only_pdf_ends_with_one_empty_last_batch(
    tmp_path: Path, corpus: Path
) -> None:
    blobs = LocalBlobStore(tmp_path)
    event = stored_upload(blobs, corpus / "pdf" / "grayscale-image.pdf", "application/pdf")
    published = await extract(blobs, event)
    [batch] = published.of(TextExtracted)
    assert batch.last
    assert batch.chunks == []
    assert batch.chunks_total == 0
    assert batch.pages == 1


async def test_markdown_is_one_unit_of_progress(tmp_path: Path, corpus: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    event = stored_upload(blobs, corpus / "markdown" / "003_a19fe08ef10adc87.md", "text/markdown")
    published = await extract(blobs, event)
    assert [(p.done, p.total) for p in published.of(DocumentProgressed)] == [(0, 1), (1, 1)]
    batches = published.of(TextExtracted)
    assert batches[-1].chunks_total >= 1
    assert batches[-1].pages is None
    assert all(c.page is None for b in batches for c in b.chunks)


async def test_an_encrypted_pdf_raises_and_leaves_no_chunks(tmp_path: Path, corpus: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    path = corpus / "pdf" / "libreoffice-writer-password.pdf"
    event = stored_upload(blobs, path, "application/pdf")
    with pytest.raises(DocumentError) as caught:
        await extract(blobs, event)
    assert caught.value.code is ErrorCode.ENCRYPTED
    assert not (tmp_path / chunks_key(event.tenant_id, event.document_id)).exists()


async def test_a_missing_blob_is_a_document_error(tmp_path: Path, corpus: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    event = stored_upload(blobs, corpus / "pdf" / "minimal-document.pdf", "application/pdf")
    blobs.delete(event.blob_key)
    with pytest.raises(DocumentError, match="upload it again"):
        await extract(blobs, event)


async def test_a_stored_file_past_the_size_limit_is_not_read(tmp_path: Path, corpus: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    path = corpus / "pdf" / "minimal-document.pdf"
    event = stored_upload(blobs, path, "application/pdf")
    size = path.stat().st_size
    publish = Recorder()
    with pytest.raises(DocumentError) as caught:
        await extract_document(
            event, blobs=blobs, publish=publish, reading=Reading(max_file_bytes=size - 1)
        )
    assert caught.value.code is ErrorCode.LIMIT_EXCEEDED
    assert str(size - 1) in caught.value.message
    assert publish.events == []
    # At the limit it is read.
    await extract_document(
        event, blobs=blobs, publish=publish, reading=Reading(max_file_bytes=size)
    )
    assert publish.of(TextExtracted)


class _Reads:
    """An OCR engine stand-in: every picture reads as ``text``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def read(self, picture: GreyPicture) -> str:
        assert picture.width * picture.height > 0
        return self.text


async def test_a_page_read_by_ocr_is_announced_as_ocr_page_n_of_n(
    tmp_path: Path, corpus: Path
) -> None:
    blobs = LocalBlobStore(tmp_path)
    event = stored_upload(blobs, corpus / "scanned" / "c02-22.pdf", "application/pdf")
    reading = Reading(
        opener=InProcess(
            Chunking(),
            ocr=lambda document, stream: with_ocr(
                document, stream, OcrPolicy(), lambda: _Reads("Words only OCR could see.")
            ),
        )
    )
    published = Recorder()
    await extract_document(event, blobs=blobs, publish=published, reading=reading)

    progress = published.of(DocumentProgressed)
    assert [(p.done, p.total, p.ocr_page) for p in progress] == [
        (0, 1, None),
        (0, 1, 1),  # OCR page 1 of 1, before its chunks
        (1, 1, None),
    ]
    [batch] = published.of(TextExtracted)
    assert [c.text for c in batch.chunks] == ["Words only OCR could see."]
