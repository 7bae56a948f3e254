"""The OCR stage wired as in production: the extractor and the OCR consumer on one
broker (FastStream's TestKafkaBroker, or the real one with --real-kafka), the
sandbox and Tesseract real."""

from __future__ import annotations

import uuid
from functools import partial
from pathlib import Path

from faststream.kafka import TestKafkaBroker
from prometheus_client import CollectorRegistry

from docflow_extractor.adapters.sandbox_ocr import open_ocr_range
from docflow_extractor.bootstrap import Ports, ocr_models, reading_for, wire, wire_ocr
from docflow_extractor.settings import ExtractorSettings
from docflow_shared import topics
from docflow_shared.blobstore import LocalBlobStore
from docflow_shared.events import (
    DocumentFailed,
    DocumentProgressed,
    OcrRangeRead,
    OcrRangeRequested,
    TextExtracted,
)
from docflow_shared.messaging import make_broker
from service.conftest import Collector
from support.scans import scan
from support.uploads import stored_upload
from support.waiting import await_until


async def test_a_scan_is_read_by_the_ocr_consumer_in_ranges_and_cut_by_the_extractor(
    real_kafka: str | None, tmp_path: Path
) -> None:
    broker = make_broker(real_kafka or "127.0.0.1:1", service="extractor")
    blobs = LocalBlobStore(tmp_path / "blobs")
    settings = ExtractorSettings(data_dir=tmp_path, ocr_range_pages=2)
    wire(broker, Ports(blobs, reading_for(settings)), settings)
    registry = CollectorRegistry()
    opener = partial(
        open_ocr_range, limits=settings.sandbox, ocr=settings.ocr, tessdata=ocr_models(settings)
    )
    wire_ocr(broker, blobs, opener, settings, registry)
    collector = Collector(
        broker,
        topics.PROGRESSED,
        topics.EXTRACTED,
        topics.FAILED,
        topics.OCR_REQUESTED,
        topics.OCR_DONE,
        group_id=f"test-{uuid.uuid4()}",
    )
    path = tmp_path / "scan.pdf"
    path.write_bytes(scan(3))
    event = stored_upload(blobs, path, "application/pdf")
    collector.document_ids.add(event.document_id)
    async with TestKafkaBroker(broker, with_real=real_kafka is not None) as br:
        await br.publish(event, topic=topics.UPLOADED, key=str(event.document_id).encode())

        async def last_batch() -> TextExtracted | None:
            return next((b for b in collector.of(TextExtracted) if b.last), None)

        last = await await_until(last_batch, timeout_s=180, what="the last chunk batch")
    assert not collector.of(DocumentFailed)
    assert sorted((r.first, r.last) for r in collector.of(OcrRangeRequested)) == [(1, 2), (3, 3)]
    assert sorted(p.number for a in collector.of(OcrRangeRead) for p in a.pages) == [1, 2, 3]
    assert sorted(p.ocr_page for p in collector.of(DocumentProgressed) if p.ocr_page) == [1, 2, 3]
    chunks = [c for b in collector.of(TextExtracted) for c in b.chunks]
    assert last.chunks_total == len(chunks)
    assert last.pages == 3
    text = " ".join(" ".join(c.text for c in chunks).split())
    # linn.pdf (pages 1 and 3) and c02-22.pdf (page 2), read by Tesseract, in page order.
    assert text.count("LinnSequencer is a state") == 2
    assert "We went tip-toeing along a path amongst the trees" in text
    assert text.index("tip-toeing") < text.rindex("LinnSequencer is a state")
    assert registry.get_sample_value("docflow_ocr_pages_total") == 3
    assert registry.get_sample_value("docflow_ocr_ranges_total") == 2
