"""Per-document limits: how much text a document may have and how many chunks it
may become; past either it fails ``limit_exceeded``, naming the limit and its setting."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from docflow_extractor.adapters.sandbox import SandboxLimits, open_sandboxed
from docflow_extractor.bootstrap import reading_for
from docflow_extractor.domain.chunking import Chunking
from docflow_extractor.domain.cutting import DocumentLimits, InProcess
from docflow_extractor.handlers import Reading, extract_document
from docflow_extractor.settings import ExtractorSettings
from docflow_shared.blobstore import LocalBlobStore
from docflow_shared.errors import DocumentError
from docflow_shared.events import ErrorCode, Event, TextExtracted
from support.uploads import stored_upload

MiB = 1024 * 1024
CHUNKING = Chunking()
PROSE = " ".join(f"Sentence number {n} says something about glaciers." for n in range(200))


def twenty_megabytes_of_text() -> bytes:
    line = b"The glacier moved a little further down the valley this year.\n"
    return line * (20 * MiB // len(line))


def cut_in_process(data: bytes, limits: DocumentLimits) -> int:
    document = InProcess(CHUNKING, limits)(io.BytesIO(data), "text/plain")
    return sum(len(pieces) for pieces in document.pieces())


def test_text_past_the_limit_fails_naming_the_limit_and_its_setting() -> None:
    with pytest.raises(DocumentError) as failure:
        cut_in_process(PROSE.encode(), DocumentLimits(max_text_bytes=1024))
    assert failure.value.code is ErrorCode.LIMIT_EXCEEDED
    assert "more than 1024 bytes of text" in failure.value.message
    assert "DOCFLOW_MAX_TEXT_BYTES" in failure.value.message


def test_chunks_past_the_limit_fail_naming_the_limit_and_its_setting() -> None:
    assert cut_in_process(PROSE.encode(), DocumentLimits()) > 5
    with pytest.raises(DocumentError) as failure:
        cut_in_process(PROSE.encode(), DocumentLimits(max_chunks=5))
    assert failure.value.code is ErrorCode.LIMIT_EXCEEDED
    assert "more than 5 chunks" in failure.value.message
    assert "DOCFLOW_MAX_CHUNKS" in failure.value.message


def test_a_20_mb_text_file_fails_in_the_sandbox_instead_of_becoming_28000_chunks() -> None:
    limits = SandboxLimits(memory_bytes=1024 * MiB, wall_clock_s=120)
    document = open_sandboxed(io.BytesIO(twenty_megabytes_of_text()), "text/plain", None, limits)
    with pytest.raises(DocumentError) as failure:
        list(document.pieces())
    assert failure.value.code is ErrorCode.LIMIT_EXCEEDED
    assert "DOCFLOW_MAX_TEXT_BYTES" in failure.value.message


def test_the_sandbox_cuts_within_the_chunk_limit_it_is_given() -> None:
    document = open_sandboxed(
        io.BytesIO(PROSE.encode()), "text/plain", document_limits=DocumentLimits(max_chunks=5)
    )
    with pytest.raises(DocumentError, match="DOCFLOW_MAX_CHUNKS"):
        list(document.pieces())


async def test_a_document_past_a_limit_sends_no_last_batch(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    (tmp_path / "prose.txt").write_text(PROSE)
    event = stored_upload(blobs, tmp_path / "prose.txt", "text/plain")
    published: list[Event] = []

    async def publish(event: Event) -> None:
        published.append(event)

    reading = Reading(opener=InProcess(CHUNKING, DocumentLimits(max_chunks=5)))
    with pytest.raises(DocumentError, match="DOCFLOW_MAX_CHUNKS"):
        await extract_document(event, blobs=blobs, publish=publish, reading=reading)
    assert not any(e.last for e in published if isinstance(e, TextExtracted))


def test_the_limits_are_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ExtractorSettings(data_dir=tmp_path).document_limits == DocumentLimits()
    monkeypatch.setenv("DOCFLOW_MAX_TEXT_BYTES", "2048")
    monkeypatch.setenv("DOCFLOW_MAX_CHUNKS", "7")
    limits = ExtractorSettings(data_dir=tmp_path).document_limits
    assert limits == DocumentLimits(max_text_bytes=2048, max_chunks=7)


def test_a_tokenizer_that_cannot_be_loaded_fails_at_start_up_not_in_each_worker(
    tmp_path: Path,
) -> None:
    settings = ExtractorSettings(data_dir=tmp_path, chunk_tokenizer=str(tmp_path / "none.json"))
    with pytest.raises(ValueError, match="unknown chunk tokenizer"):
        reading_for(settings)
