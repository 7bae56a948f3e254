"""The OCR consumer's failures on the real broker, wired as in production: a range
that meets an outage goes through the OCR consumer's own retry topics (and stops
there when its document is cancelled), one that outlasts every retry is
dead-lettered and fails its document, and the answers of a document a range
failed are dropped, never put together.

OCR itself is an engine that says which picture it saw (the real Tesseract runs in
test_ocr_wiring.py and tests/e2e/test_ocr_stage.py): these are about the stage."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from faststream.kafka import TestKafkaBroker
from prometheus_client import CollectorRegistry

from docflow_extractor.bootstrap import Ports, reading_for, wire, wire_ocr
from docflow_extractor.domain.chunking import Chunking
from docflow_extractor.domain.cutting import InProcess
from docflow_extractor.domain.ocr import GreyPicture, OcrPolicy, with_ocr
from docflow_extractor.settings import ExtractorSettings
from docflow_shared import retries, topics
from docflow_shared.blobstore import BlobStoreUnavailableError, LocalBlobStore
from docflow_shared.errors import DocumentError
from docflow_shared.events import (
    DocumentCancelled,
    DocumentFailed,
    DocumentRetrying,
    DocumentUploaded,
    ErrorCode,
    OcrRangeRead,
    OcrRangeRequested,
    TextExtracted,
)
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.messaging import make_broker
from docflow_shared.topics import specs
from service.conftest import Collector
from service.test_failures import dead_letters
from support.scans import scan
from support.uploads import stored_upload
from support.waiting import await_until

pytestmark = pytest.mark.integration

DELAYS = [0.3, 0.6, 0.9]


class _Reads:
    def read(self, picture: GreyPicture) -> str:
        return f"Scanned words of a picture {picture.height} pixels tall."


def _ocr(document: Any, stream: BinaryIO, **options: Any) -> Any:
    return with_ocr(document, stream, OcrPolicy(), _Reads, **options)


class FlakyBlobs(LocalBlobStore):
    """The OCR consumer's view of the blob store: the original files are unavailable
    ``failures`` times (forever when negative)."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures
        self.refused = 0

    def open(self, key: str, *, max_bytes: int | None = None) -> BinaryIO:
        if key.endswith("/original") and self.failures:
            self.failures -= 1
            self.refused += 1
            raise BlobStoreUnavailableError("S3: 503 Slow Down")
        return super().open(key, max_bytes=max_bytes)


class OcrStage:
    """The extractor and the OCR consumer on the real broker, and what they publish."""

    def __init__(
        self,
        bootstrap: str,
        tmp_path: Path,
        *,
        failures: int = 0,
        open_range: Callable[[BinaryIO, int, int], Any] | None = None,
    ) -> None:
        self.blobs = LocalBlobStore(tmp_path / "blobs")
        self.ocr_blobs = FlakyBlobs(tmp_path / "blobs", failures)
        settings = ExtractorSettings(data_dir=tmp_path, ocr_range_pages=2, retry_delays_s=DELAYS)
        self.broker = make_broker(bootstrap, service="extractor")
        wire(self.broker, Ports(self.blobs, reading_for(settings)), settings)
        self.registry = CollectorRegistry()
        in_process = InProcess(Chunking(), ocr=_ocr)
        wire_ocr(
            self.broker,
            self.ocr_blobs,
            open_range or in_process.ocr_range,
            settings,
            self.registry,
        )
        self.collector = Collector(
            self.broker,
            topics.EXTRACTED,
            topics.FAILED,
            topics.RETRYING,
            topics.OCR_REQUESTED,
            topics.OCR_DONE,
            group_id=f"test-{uuid.uuid4()}",
        )

    def upload(self, tmp_path: Path, pages: int) -> DocumentUploaded:
        path = tmp_path / f"scan-{pages}.pdf"
        path.write_bytes(scan(pages))
        event = stored_upload(self.blobs, path, "application/pdf")
        self.collector.document_ids.add(event.document_id)
        return event

    def of(self, kind: type) -> list:
        return self.collector.of(kind)

    def kept(self, event: DocumentUploaded) -> list[str]:
        """What the assembler keeps of the document's OCR answers."""
        folder = self.blobs.root / event.tenant_id / str(event.document_id) / "ocr"
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


async def _publish(br: Any, event: DocumentUploaded) -> None:
    await br.publish(event, topic=topics.UPLOADED, key=str(event.document_id).encode())


async def test_a_range_that_meets_an_outage_is_retried_on_the_ocr_retry_topics(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    await ensure_topics(kafka_bootstrap, specs())
    stage = OcrStage(kafka_bootstrap, tmp_path, failures=2)
    event = stage.upload(tmp_path, 3)
    async with TestKafkaBroker(stage.broker, with_real=True) as br:
        await _publish(br, event)

        async def last_batch() -> TextExtracted | None:
            return next((b for b in stage.of(TextExtracted) if b.last), None)

        last = await await_until(last_batch, timeout_s=120, what="the last chunk batch")
    assert stage.ocr_blobs.refused == 2
    retrying = stage.of(DocumentRetrying)
    assert len(retrying) == 2
    assert all(e.stage == "extracting" and e.retries == 3 for e in retrying)
    assert all("503 Slow Down" in e.reason for e in retrying)
    assert not stage.of(DocumentFailed)
    # Each range answered (once: a parked range is read by an OCR consumer, not
    # by the extractor), and the document cut whole.
    assert sorted(p.number for a in stage.of(OcrRangeRead) for p in a.pages) == [1, 2, 3]
    assert last.pages == 3
    text = " ".join(c.text for b in stage.of(TextExtracted) for c in b.chunks)
    assert text.count("Scanned words") == 3
    assert stage.registry.get_sample_value("docflow_retries_total", {"stage": "extracting"}) == 2
    assert stage.kept(event) == []


async def test_an_outage_longer_than_every_retry_dead_letters_the_range_and_fails_the_document(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    await ensure_topics(kafka_bootstrap, specs())
    stage = OcrStage(kafka_bootstrap, tmp_path, failures=-1)
    event = stage.upload(tmp_path, 2)  # one range
    async with TestKafkaBroker(stage.broker, with_real=True) as br:
        await _publish(br, event)

        async def failed() -> list[DocumentFailed]:
            return stage.of(DocumentFailed)

        [failure] = await await_until(failed, timeout_s=120, what="DocumentFailed")

        async def answered() -> list[OcrRangeRead]:
            return stage.of(OcrRangeRead)

        [answer] = await await_until(answered, timeout_s=60, what="the failed range's answer")
        await asyncio.sleep(1)
    assert [e.retry for e in stage.of(DocumentRetrying)] == [1, 2, 3]
    assert failure.error.retryable is True
    assert failure.error.stage == "extracting"
    assert failure.error.message == (
        "BlobStoreUnavailableError: S3: 503 Slow Down (gave up after 3 retries)"
    )
    assert (answer.failed, answer.pages) == (True, [])
    [(body, headers)] = await dead_letters(kafka_bootstrap, {f"{event.document_id}:0"})
    assert OcrRangeRequested.model_validate_json(body).document_id == event.document_id
    assert headers[retries.ORIGINAL_TOPIC] == topics.OCR_REQUESTED
    assert headers[retries.SERVICE] == "ocr"
    assert headers[retries.RETRIES] == "3"
    assert stage.registry.get_sample_value("docflow_dead_letters_total", {"stage": "extracting"})
    assert not stage.of(TextExtracted)
    assert stage.kept(event) == []


async def test_a_parked_range_of_a_cancelled_document_is_not_read_again(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    await ensure_topics(kafka_bootstrap, specs())
    stage = OcrStage(kafka_bootstrap, tmp_path, failures=-1)
    event = stage.upload(tmp_path, 2)
    async with TestKafkaBroker(stage.broker, with_real=True) as br:
        await _publish(br, event)

        async def retrying() -> list[DocumentRetrying]:
            return stage.of(DocumentRetrying)

        await await_until(retrying, timeout_s=120, what="the range parked")
        await br.publish(
            DocumentCancelled.caused_by(event),
            topic=topics.CANCELLED,
            key=DocumentCancelled.caused_by(event).kafka_key,
        )
        # Past every delay: a range still being retried would have failed the document.
        await asyncio.sleep(sum(DELAYS) + 4)
    assert len(stage.of(DocumentRetrying)) <= 2
    assert not stage.of(DocumentFailed)
    assert not stage.of(OcrRangeRead)
    assert not stage.of(TextExtracted)


async def test_answers_of_a_document_a_range_failed_are_dropped(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    await ensure_topics(kafka_bootstrap, specs())
    in_process = InProcess(Chunking(), ocr=_ocr)

    def open_range(stream: BinaryIO, first: int, last: int) -> Any:
        if first == 1:
            raise DocumentError(ErrorCode.CORRUPT, "page 1: damaged picture")
        return in_process.ocr_range(stream, first, last)

    stage = OcrStage(kafka_bootstrap, tmp_path, open_range=open_range)
    event = stage.upload(tmp_path, 5)  # ranges 1-2 (fails), 3-4, 5
    async with TestKafkaBroker(stage.broker, with_real=True) as br:
        await _publish(br, event)

        async def all_answered() -> list[OcrRangeRead] | None:
            answers = stage.of(OcrRangeRead)
            return answers if {a.range_index for a in answers} == {0, 1, 2} else None

        answers = await await_until(all_answered, timeout_s=120, what="every range answered")

        async def nothing_kept() -> bool:
            return stage.kept(event) == []

        await await_until(nothing_kept, timeout_s=60, what="the answers dropped")
        await asyncio.sleep(2)
    [failure] = stage.of(DocumentFailed)
    assert failure.error.code == "corrupt"
    assert "damaged picture" in failure.error.message
    assert [a.failed for a in answers if a.range_index == 0] == [True]
    # The other ranges were read (or skipped, once the failure was noted), and
    # nothing was put together, so nothing goes to the embedder.
    assert not stage.of(TextExtracted)
    assert stage.kept(event) == []
