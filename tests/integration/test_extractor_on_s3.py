"""The extractor's handlers on the S3 store of a real SeaweedFS, with the
parser sandbox as in production: the original downloaded to a temporary file
whose descriptor the sandboxed worker reads, the chunk log kept in S3 and sent
again from there for a retry, the size bound applied before any download."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import uuid4

import pytest

from docflow_extractor.bootstrap import reading_for
from docflow_extractor.handlers import extract_document, resend_chunks
from docflow_extractor.settings import ExtractorSettings
from docflow_shared.blobstore import chunks_key
from docflow_shared.errors import DocumentError
from docflow_shared.events import (
    DocumentRetryRequested,
    ErrorCode,
    Event,
    Stage,
    TextExtracted,
)
from docflow_shared.s3blobstore import S3BlobStore
from support.seaweedfs import S3Server
from support.uploads import stored_upload


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def chunks(self) -> list[str]:
        return [c.text for e in self.events if isinstance(e, TextExtracted) for c in e.chunks]


@pytest.fixture
def s3(s3_server: S3Server) -> S3BlobStore:
    return s3_server.store(f"extractor-{uuid4().hex[:12]}")


async def test_a_pdf_is_read_from_s3_in_the_sandbox_and_its_chunks_sent_again(
    s3: S3BlobStore, corpus: Path
) -> None:
    reading = reading_for(ExtractorSettings())
    uploaded = stored_upload(s3, corpus / "pdf" / "pdflatex-4-pages.pdf", "application/pdf")
    extracted = Recorder()
    await extract_document(uploaded, blobs=s3, publish=extracted, reading=reading)
    texts = extracted.chunks()
    assert texts
    assert any(e.pages == 4 for e in extracted.events if isinstance(e, TextExtracted) and e.last)
    with s3.open(chunks_key(uploaded.tenant_id, uploaded.document_id)) as log:
        assert [json.loads(line)["text"] for line in log] == texts

    retry = DocumentRetryRequested.caused_by(
        uploaded,
        attempt=2,
        from_stage=Stage.EMBEDDING,
        filename=uploaded.filename,
        content_type=uploaded.content_type,
        blob_key=uploaded.blob_key,
    )
    resent = Recorder()
    assert await resend_chunks(retry, blobs=s3, publish=resent)
    assert resent.chunks() == texts


async def test_a_stored_file_past_the_limit_fails_before_it_is_downloaded(
    s3: S3BlobStore, corpus: Path
) -> None:
    path = corpus / "pdf" / "pdflatex-4-pages.pdf"
    uploaded = stored_upload(s3, path, "application/pdf")
    settings = ExtractorSettings(max_file_bytes=path.stat().st_size - 1)
    with pytest.raises(DocumentError) as caught:
        await extract_document(
            uploaded, blobs=s3, publish=Recorder(), reading=reading_for(settings)
        )
    assert caught.value.code is ErrorCode.LIMIT_EXCEEDED


async def test_a_missing_original_is_a_document_error(s3: S3BlobStore, corpus: Path) -> None:
    uploaded = stored_upload(s3, corpus / "pdf" / "pdflatex-4-pages.pdf", "application/pdf")
    s3.delete(uploaded.blob_key)
    with pytest.raises(DocumentError, match="upload it again"):
        await extract_document(
            uploaded, blobs=s3, publish=Recorder(), reading=reading_for(ExtractorSettings())
        )
