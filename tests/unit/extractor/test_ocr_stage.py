"""OCR as a stage of its own (ocr_stage.py): ranges, the OCR consumer's reading and the assembly.

In process, with an OCR engine that says which picture it saw: the real
Tesseract is tested in test_ocr.py and, through the stage, in tests/e2e/test_ocr_stage.py.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from docflow_extractor.domain.chunking import Chunking
from docflow_extractor.domain.cutting import InProcess
from docflow_extractor.domain.ocr import GreyPicture, OcrPolicy, with_ocr
from docflow_extractor.handlers import Reading, extract_document
from docflow_extractor.ocr_stage import assemble, extract_or_request_ocr, ranges, read_range
from docflow_shared.blobstore import LocalBlobStore
from docflow_shared.cancellations import Cancellations
from docflow_shared.events import (
    DocumentCancelled,
    DocumentProgressed,
    Event,
    OcrRangeRead,
    OcrRangeRequested,
    TextExtracted,
)
from support.scans import TEXT_PAGE, scan
from support.uploads import stored_upload


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Event]) -> list:
        return [e for e in self.events if isinstance(e, kind)]


class _Reads:
    """An engine that reads 'Scanned words' and how tall the picture is."""

    def read(self, picture: GreyPicture) -> str:
        return f"Scanned words of a picture {picture.height} pixels tall."


def _in_process(defer: bool) -> InProcess:
    def ocr(document, stream, **options):  # type: ignore[no-untyped-def]
        return with_ocr(document, stream, OcrPolicy(), _Reads, **options)

    return InProcess(Chunking(), ocr=ocr, defer=defer)


@pytest.mark.parametrize(
    ("first", "count", "size", "expected"),
    [
        (1, 6, 2, [(1, 2), (3, 4), (5, 6)]),
        (1, 7, 3, [(1, 3), (4, 6), (7, 7)]),
        (3, 3, 8, [(3, 3)]),
        (2, 200, 100, [(2, 101), (102, 200)]),
        # Never more than MAX_OCR_RANGES ranges: they grow instead.
        (1, 30_000, 1, [(n, n + 2) for n in range(1, 30_000, 3)]),
    ],
)
def test_pages_are_cut_into_ranges(
    first: int, count: int, size: int, expected: list[tuple[int, int]]
) -> None:
    assert ranges(first, count, size) == expected


def _scan_file(tmp_path: Path, pages: int, *, text_first: bool = False) -> Path:
    path = tmp_path / "scan.pdf"
    path.write_bytes(scan(pages, text_first=text_first))
    return path


async def _through_the_stage(
    blobs: LocalBlobStore, path: Path, *, range_pages: int, shuffle: bool = False
) -> tuple[Recorder, Recorder]:
    """The document through extractor, OCR consumer and assembler in turn: what the
    extractor published, and what the OCR consumer did."""
    event = stored_upload(blobs, path, "application/pdf")
    reading = Reading(opener=_in_process(True), ocr_range_pages=range_pages)
    cancellations = Cancellations()
    extractor, ocr = Recorder(), Recorder()
    await extract_or_request_ocr(
        event, blobs=blobs, publish=extractor, reading=reading, cancellations=cancellations
    )
    requests = extractor.of(OcrRangeRequested)
    for request in requests:
        await read_range(
            request,
            blobs=blobs,
            publish=ocr,
            open_range=_in_process(False).ocr_range,
            cancellations=cancellations,
        )
    answers = ocr.of(OcrRangeRead)
    if shuffle:
        random.Random(7).shuffle(answers)
    for answer in answers:
        await assemble(
            answer, blobs=blobs, publish=extractor, reading=reading, cancellations=cancellations
        )
    return extractor, ocr


async def test_a_scan_is_read_range_by_range_and_cut_once_in_page_order(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    extractor, ocr = await _through_the_stage(
        blobs, _scan_file(tmp_path, 5, text_first=True), range_pages=2, shuffle=True
    )
    # Page 1 has text: the OCR stage starts at page 2, in ranges of 2 pages.
    assert [
        (r.first, r.last, r.range_index, r.range_count) for r in extractor.of(OcrRangeRequested)
    ] == [
        (2, 3, 0, 3),
        (4, 5, 1, 3),
        (6, 6, 2, 3),
    ]
    assert [p.number for a in ocr.of(OcrRangeRead) for p in a.pages] == [2, 3, 4, 5, 6]
    assert [p.ocr_page for p in ocr.of(DocumentProgressed)] == [2, 3, 4, 5, 6]
    # The request says from which page the document waits for OCR (the status service).
    asked = [p for p in extractor.of(DocumentProgressed) if p.ocr_from is not None]
    assert [(p.done, p.total, p.ocr_from) for p in asked] == [(1, 6, 2)]
    # One extraction's batches: numbered from 0, the last with the exact total.
    batches = extractor.of(TextExtracted)
    assert [b.batch for b in batches] == list(range(len(batches)))
    chunks = [c for b in batches for c in b.chunks]
    assert batches[-1].last
    assert batches[-1].chunks_total == len(chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    pages = [c.page for c in chunks]
    covered = {n for c in chunks for n in range(c.page, (c.page_end or c.page) + 1)}
    assert pages == sorted(pages)
    assert covered == {1, 2, 3, 4, 5, 6}
    text = " ".join(c.text for c in chunks)
    assert text.count("Scanned words") == 5
    assert "crazy" in text.lower()  # the text layer of page 1
    # The ranges' answers are not kept once the document is put together.
    assert not list((tmp_path / "blobs").rglob("ocr/*/*.json"))
    # The upload's facts went through the OCR stage to every batch.
    [request, *_] = extractor.of(OcrRangeRequested)
    assert request.document is not None
    assert all(b.document == request.document for b in batches)
    assert request.document.filename == "scan.pdf"


async def test_a_document_with_text_on_every_page_goes_the_old_way(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    old = await _extract_old_way(blobs, TEXT_PAGE)
    extractor, ocr = await _through_the_stage(blobs, TEXT_PAGE, range_pages=2)
    assert not extractor.of(OcrRangeRequested)
    assert not ocr.events
    assert [b.chunks for b in extractor.of(TextExtracted)] == [
        b.chunks for b in old.of(TextExtracted)
    ]


async def _extract_old_way(blobs: LocalBlobStore, path: Path) -> Recorder:
    published = Recorder()
    event = stored_upload(blobs, path, "application/pdf")
    await extract_document(event, blobs=blobs, publish=published, reading=Reading())
    return published


async def test_the_same_chunks_as_ocr_in_the_extractor(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    path = _scan_file(tmp_path, 4, text_first=True)
    staged, _ = await _through_the_stage(blobs, path, range_pages=3)
    published = Recorder()
    event = stored_upload(blobs, path, "application/pdf")
    await extract_document(
        event, blobs=blobs, publish=published, reading=Reading(opener=_in_process(False))
    )
    assert [c for b in staged.of(TextExtracted) for c in b.chunks] == [
        c for b in published.of(TextExtracted) for c in b.chunks
    ]


async def test_ranges_of_a_cancelled_attempt_are_neither_read_nor_put_together(
    tmp_path: Path,
) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    event = stored_upload(blobs, _scan_file(tmp_path, 3), "application/pdf")
    reading = Reading(opener=_in_process(True), ocr_range_pages=1)
    cancellations = Cancellations()
    extractor, ocr = Recorder(), Recorder()
    await extract_or_request_ocr(
        event, blobs=blobs, publish=extractor, reading=reading, cancellations=cancellations
    )
    first, second, third = extractor.of(OcrRangeRequested)
    assert await read_range(
        first,
        blobs=blobs,
        publish=ocr,
        open_range=_in_process(False).ocr_range,
        cancellations=cancellations,
    )
    [answer] = ocr.of(OcrRangeRead)
    # Kept until the document's last range answers.
    assert not await assemble(
        answer, blobs=blobs, publish=extractor, reading=reading, cancellations=cancellations
    )
    assert len(list((tmp_path / "blobs").rglob("ocr/*/*.json"))) == 1
    cancellations.record(DocumentCancelled.caused_by(event))
    for request in (second, third):
        assert (
            await read_range(
                request,
                blobs=blobs,
                publish=ocr,
                open_range=_in_process(False).ocr_range,
                cancellations=cancellations,
            )
            is None
        )
    assert ocr.of(OcrRangeRead) == [answer]
    # The answer again (a redelivery) after the cancellation: what was kept goes.
    assert not await assemble(
        answer, blobs=blobs, publish=extractor, reading=reading, cancellations=cancellations
    )
    assert not list((tmp_path / "blobs").rglob("ocr/*/*.json"))
    assert not extractor.of(TextExtracted)


async def test_answers_of_an_attempt_a_range_failed_are_dropped(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    event = stored_upload(blobs, _scan_file(tmp_path, 4), "application/pdf")
    reading = Reading(opener=_in_process(True), ocr_range_pages=1)
    cancellations = Cancellations()
    extractor, ocr = Recorder(), Recorder()
    await extract_or_request_ocr(
        event, blobs=blobs, publish=extractor, reading=reading, cancellations=cancellations
    )
    requests = extractor.of(OcrRangeRequested)
    assert len(requests) == 4

    async def read(request: OcrRangeRequested) -> int | None:
        return await read_range(
            request,
            blobs=blobs,
            publish=ocr,
            open_range=_in_process(False).ocr_range,
            cancellations=cancellations,
        )

    async def put_together(answer: OcrRangeRead) -> bool:
        return await assemble(
            answer, blobs=blobs, publish=extractor, reading=reading, cancellations=cancellations
        )

    assert await read(requests[0]) == 1
    assert await read(requests[3]) == 1
    first, last = ocr.of(OcrRangeRead)
    assert not await put_together(first)
    kept = tmp_path / "blobs" / event.tenant_id / str(event.document_id) / "ocr" / "1"
    assert sorted(p.name for p in kept.iterdir()) == ["0.json"]
    # Range 1 fails the document (as the OCR consumer's failure middleware answers it).
    failure = OcrRangeRead.caused_by(
        requests[1], range_index=1, range_count=4, pages=[], failed=True
    )
    assert not await put_together(failure)
    assert sorted(p.name for p in kept.iterdir()) == ["failed.json"]
    # A range not read yet is skipped, answered as failed; one read before is dropped.
    assert await read(requests[2]) is None
    skipped = ocr.of(OcrRangeRead)[-1]
    assert (skipped.range_index, skipped.failed, skipped.pages) == (2, True, [])
    assert not await put_together(last)
    assert (kept / "failed.json").exists()
    assert not await put_together(skipped)
    # Every range answered: nothing of the attempt is left, nothing was cut or sent.
    assert not kept.exists()
    assert not extractor.of(TextExtracted)
    # A late redelivery of the failure notes it again (harmless), and still nothing is cut.
    assert not await put_together(failure)
    assert not extractor.of(TextExtracted)


def test_a_failed_range_carries_no_pages(tmp_path: Path) -> None:
    upload = stored_upload(
        LocalBlobStore(tmp_path / "blobs"), _scan_file(tmp_path, 1), "application/pdf"
    )
    fields = {"range_index": 0, "range_count": 1, "pages": [{"number": 1, "text": "x"}]}
    assert not OcrRangeRead.caused_by(upload, **fields).failed
    with pytest.raises(ValueError, match="a failed range has no pages"):
        OcrRangeRead.caused_by(upload, **fields, failed=True)
