"""The upload's facts (filename, time, metadata) ride with every chunk batch, from an
upload and from a retry, so that the embedder can store them for the search's filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from docflow_extractor.domain.chunking import ChunkBatcher
from docflow_extractor.handlers import Reading, extract_document, resend_chunks
from docflow_shared.blobstore import LocalBlobStore
from docflow_shared.events import (
    DocumentRetryRequested,
    Event,
    Stage,
    TextExtracted,
)
from support.uploads import stored_upload

pytestmark = pytest.mark.unit

META = {"team": "red", "tags": ["a", "b"]}


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def batches(self) -> list[TextExtracted]:
        return [e for e in self.events if isinstance(e, TextExtracted)]


async def test_every_batch_carries_the_uploads_facts(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    source = tmp_path / "notes.md"
    source.write_text("# Notes\n\n" + "A sentence about rivers and stones. " * 400)
    uploaded = stored_upload(blobs, source, "text/markdown").model_copy(update={"metadata": META})
    publish = Recorder()
    small = Reading(new_batcher=lambda: ChunkBatcher(max_chunks=2))
    await extract_document(uploaded, blobs=blobs, publish=publish, reading=small)
    batches = publish.batches()
    assert len(batches) > 1
    for batch in batches:
        assert batch.document is not None
        assert batch.document.filename == "notes.md"
        assert batch.document.uploaded_at == uploaded.occurred_at
        assert batch.document.metadata == META

    # A retry at embedding sends the stored chunks again, with the facts it carries.
    retry = DocumentRetryRequested.caused_by(
        uploaded,
        attempt=2,
        from_stage=Stage.EMBEDDING,
        filename=uploaded.filename,
        content_type=uploaded.content_type,
        blob_key=uploaded.blob_key,
        metadata=META,
        uploaded_at=uploaded.occurred_at,
    )
    again = Recorder()
    assert await resend_chunks(retry, blobs=blobs, publish=again)
    assert again.batches()
    assert all(b.document == batches[0].document for b in again.batches())

    # A retry from a gateway that kept no upload time: no facts rather than wrong ones.
    older = retry.model_copy(update={"uploaded_at": None, "metadata": None})
    plain = Recorder()
    assert await resend_chunks(older, blobs=blobs, publish=plain)
    assert plain.batches()
    assert all(b.document is None for b in plain.batches())
