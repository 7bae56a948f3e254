"""The extractor's subscriber, middleware and publisher, wired as in production."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from faststream.kafka import TestKafkaBroker
from pypdf import PdfWriter

from docflow_extractor.bootstrap import Ports, reading_for, wire
from docflow_extractor.settings import ExtractorSettings
from docflow_shared import topics
from docflow_shared.blobstore import LocalBlobStore
from docflow_shared.events import (
    DocumentFailed,
    DocumentProgressed,
    TextExtracted,
)
from docflow_shared.messaging import make_broker
from service.conftest import Collector
from support import hostile
from support.uploads import stored_upload
from support.waiting import await_until


def extractor(bootstrap: str | None, tmp_path: Path) -> tuple:
    broker = make_broker(bootstrap or "127.0.0.1:1", service="extractor")
    blobs = LocalBlobStore(tmp_path / "blobs")
    settings = ExtractorSettings(data_dir=tmp_path)
    wire(broker, Ports(blobs, reading_for(settings)), settings)
    collector = Collector(
        broker, topics.PROGRESSED, topics.EXTRACTED, topics.FAILED, group_id=f"test-{uuid.uuid4()}"
    )
    return broker, blobs, collector


async def test_an_upload_becomes_progress_and_chunk_batches(
    real_kafka: str | None, tmp_path: Path, corpus: Path
) -> None:
    broker, blobs, collector = extractor(real_kafka, tmp_path)
    event = stored_upload(blobs, corpus / "pdf" / "pdflatex-4-pages.pdf", "application/pdf")
    collector.document_ids.add(event.document_id)
    async with TestKafkaBroker(broker, with_real=real_kafka is not None) as br:
        await br.publish(event, topic=topics.UPLOADED, key=str(event.document_id).encode())

        async def last_batch() -> TextExtracted | None:
            return next((b for b in collector.of(TextExtracted) if b.last), None)

        last = await await_until(last_batch, timeout_s=60, what="the last chunk batch")
        await await_until(
            lambda: any(p.done == 4 for p in collector.of(DocumentProgressed)),
            timeout_s=30,
            what="the final progress event",
        )
    assert last.pages == 4
    assert last.chunks_total == sum(len(b.chunks) for b in collector.of(TextExtracted)) > 0
    assert all(b.correlation_id == event.correlation_id for b in collector.events)


async def test_an_encrypted_pdf_fails_its_document_and_the_next_one_still_flows(
    real_kafka: str | None, tmp_path: Path, corpus: Path
) -> None:
    broker, blobs, collector = extractor(real_kafka, tmp_path)
    locked = stored_upload(
        blobs, corpus / "pdf" / "libreoffice-writer-password.pdf", "application/pdf"
    )
    fine = stored_upload(blobs, corpus / "markdown" / "004_2fa5e17c5a412ea5.md", "text/markdown")
    collector.document_ids.update({locked.document_id, fine.document_id})
    async with TestKafkaBroker(broker, with_real=real_kafka is not None) as br:
        # Same key: same partition, so the good document waits behind the bad one.
        for event in (locked, fine):
            await br.publish(event, topic=topics.UPLOADED, key=b"same-partition")
        await await_until(
            lambda: any(b.last for b in collector.of(TextExtracted)),
            timeout_s=60,
            what="the markdown file behind the encrypted one",
        )
    [failed] = collector.of(DocumentFailed)
    assert failed.document_id == locked.document_id
    assert failed.error.code == "encrypted"
    assert failed.error.stage == "extracting"
    assert not failed.error.retryable


async def test_a_message_that_is_not_an_event_does_not_stop_the_consumer(
    real_kafka: str | None, tmp_path: Path, corpus: Path
) -> None:
    broker, blobs, collector = extractor(real_kafka, tmp_path)
    fine = stored_upload(blobs, corpus / "pdf" / "minimal-document.pdf", "application/pdf")
    collector.document_ids.add(fine.document_id)
    async with TestKafkaBroker(broker, with_real=real_kafka is not None) as br:
        await br.publish(b"\x00 not json", topic=topics.UPLOADED, key=b"same-partition")
        await br.publish(fine, topic=topics.UPLOADED, key=b"same-partition")
        await await_until(
            lambda: any(b.last for b in collector.of(TextExtracted)),
            timeout_s=60,
            what="the upload behind the poison message",
        )
    assert collector.of(DocumentFailed) == []


# Each hostile file with the failure it must end in. The limits' files run with the
# default time limit, so that a machine busy with other work cannot turn their
# limit into a timeout; the endless page under a tight one, so that a page of 1.9
# million operators (about 4.6 s before pypdf's own token limit on an idle 2-core
# machine) stands for a parse that never ends. The tight limit applies to the good
# PDF behind it too (0.1 s idle): 2 s leaves it room on a machine busy with other
# work, which a limit of 1 s did not.
HOSTILE = {
    "limits": ({"bomb.pdf": "limit_exceeded", "nested.pdf": "limit_exceeded"}, None),
    "time": ({"slow.pdf": "timeout"}, 2.0),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_files_fail_their_own_documents_and_a_good_one_behind_them_completes(
    real_kafka: str | None, tmp_path: Path, corpus: Path, case: str
) -> None:
    expected, timeout_s = HOSTILE[case]
    broker = make_broker(real_kafka or "127.0.0.1:1", service="extractor")
    blobs = LocalBlobStore(tmp_path / "blobs")
    settings = ExtractorSettings(data_dir=tmp_path)
    if timeout_s is not None:
        settings = ExtractorSettings(data_dir=tmp_path, sandbox_timeout_s=timeout_s)
    wire(broker, Ports(blobs, reading_for(settings)), settings)
    collector = Collector(
        broker, topics.PROGRESSED, topics.EXTRACTED, topics.FAILED, group_id=f"test-{uuid.uuid4()}"
    )
    files = {
        "bomb.pdf": hostile.flate_bomb,
        "nested.pdf": hostile.deeply_nested,
        "slow.pdf": lambda: hostile.endless_operators(1_900_000),
    }
    uploads = {}
    for name in expected:
        (tmp_path / name).write_bytes(files[name]())
        uploads[name] = stored_upload(blobs, tmp_path / name, "application/pdf")
    good = stored_upload(blobs, corpus / "pdf" / "pdflatex-4-pages.pdf", "application/pdf")
    collector.document_ids.update({*(u.document_id for u in uploads.values()), good.document_id})
    async with TestKafkaBroker(broker, with_real=real_kafka is not None) as br:
        for event in (*uploads.values(), good):
            await br.publish(event, topic=topics.UPLOADED, key=b"one-partition")
        await await_until(
            lambda: any(
                b.last and b.document_id == good.document_id for b in collector.of(TextExtracted)
            ),
            timeout_s=120,
            what="the good PDF behind the hostile ones",
        )
    failures = {f.document_id: f.error for f in collector.of(DocumentFailed)}
    assert {uploads[name].document_id: code for name, code in expected.items()} == {
        document: error.code for document, error in failures.items()
    }
    if timeout_s is not None:
        assert f"{timeout_s:g} s" in failures[uploads["slow.pdf"].document_id].message


def _encrypted_copy(source: Path, target: Path, algorithm: str) -> Path:
    writer = PdfWriter(clone_from=str(source))
    writer.encrypt(user_password="", owner_password="owner-secret", algorithm=algorithm)
    with target.open("wb") as out:
        writer.write(out)
    return target


async def test_locked_damaged_and_markdown_files_each_reach_the_outcome_they_deserve(
    real_kafka: str | None, tmp_path: Path, corpus: Path
) -> None:
    broker, blobs, collector = extractor(real_kafka, tmp_path)
    pdf = corpus / "pdf" / "pdflatex-4-pages.pdf"
    no_eof = tmp_path / "no-eof.pdf"
    no_eof.write_bytes(pdf.read_bytes().replace(b"%%EOF", b""))  # pypdf refuses, PDFium reads
    readable = {
        name: stored_upload(blobs, path, "application/pdf")
        for name, path in {
            "aes-128": _encrypted_copy(pdf, tmp_path / "aes128.pdf", "AES-128"),
            "aes-256": _encrypted_copy(pdf, tmp_path / "aes256.pdf", "AES-256"),
            "no-eof": no_eof,
        }.items()
    }
    locked = stored_upload(
        blobs, corpus / "pdf" / "libreoffice-writer-password.pdf", "application/pdf"
    )
    markdown = stored_upload(
        blobs, corpus / "markdown" / "000_e21e99f4fa213ba2.md", "text/markdown"
    )
    events = [*readable.values(), locked, markdown]
    collector.document_ids.update(e.document_id for e in events)
    async with TestKafkaBroker(broker, with_real=real_kafka is not None) as br:
        for event in events:
            await br.publish(event, topic=topics.UPLOADED, key=b"same-partition")
        await await_until(
            lambda: any(
                b.last and b.document_id == markdown.document_id
                for b in collector.of(TextExtracted)
            ),
            timeout_s=60,
            what="the markdown file behind the PDFs",
        )
    [failed] = collector.of(DocumentFailed)
    assert (failed.document_id, failed.error.code) == (locked.document_id, "encrypted")
    for name, event in readable.items():
        [last] = [
            b for b in collector.of(TextExtracted) if b.document_id == event.document_id and b.last
        ]
        assert last.pages == 4, name
        assert last.chunks_total > 4, name
    # Markdown: no chunk ends with a heading cut off from the text under it.
    chunks = [
        c.text
        for b in collector.of(TextExtracted)
        if b.document_id == markdown.document_id
        for c in b.chunks
    ]
    assert len(chunks) > 10
    for text in chunks:
        last_line = [line for line in text.splitlines() if line.strip()][-1]
        assert not last_line.startswith("#"), text[-200:]


async def test_a_document_past_the_chunk_limit_fails_naming_the_setting(
    real_kafka: str | None, tmp_path: Path, corpus: Path
) -> None:
    broker = make_broker(real_kafka or "127.0.0.1:1", service="extractor")
    blobs = LocalBlobStore(tmp_path / "blobs")
    settings = ExtractorSettings(data_dir=tmp_path, max_chunks=5)
    wire(broker, Ports(blobs, reading_for(settings)), settings)
    collector = Collector(broker, topics.FAILED, group_id=f"test-{uuid.uuid4()}")
    event = stored_upload(blobs, corpus / "pdf" / "pdflatex-4-pages.pdf", "application/pdf")
    collector.document_ids.add(event.document_id)
    async with TestKafkaBroker(broker, with_real=real_kafka is not None) as br:
        await br.publish(event, topic=topics.UPLOADED, key=str(event.document_id).encode())
        [failed] = await await_until(
            lambda: collector.of(DocumentFailed), timeout_s=60, what="the document's failure"
        )
    assert failed.error.code == "limit_exceeded"
    assert "more than 5 chunks" in failed.error.message
    assert "DOCFLOW_MAX_CHUNKS" in failed.error.message
