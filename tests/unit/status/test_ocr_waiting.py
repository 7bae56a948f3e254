"""Waiting for OCR: a scan whose extractor asked the OCR stage for pages waits for
the OCR consumer (``waiting_for: ocr``), with its place in the OCR stage's queue
and an estimate from where its ranges are on docflow.ocr.requested.v1
(domain/projection.py, domain/queues.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from docflow_shared import topics
from docflow_shared.blobstore import original_key
from docflow_shared.events import (
    DocumentProgressed,
    DocumentStalled,
    DocumentUploaded,
    OcrRangeRequested,
    Stage,
    TextExtracted,
)
from docflow_status.adapters.queues import SqlQueues
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.domain.projection import DocumentState, evolve
from docflow_status.domain.queues import (
    PartitionQueue,
    QueueRecord,
    QueueView,
    estimate,
    waits_behind_moving_queue,
)
from docflow_status.domain.stages import QueueStage
from docflow_status.entrypoints.consumer import parse_input
from support.histories import chunks, envelope, successful

NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
OCR = topics.OCR_REQUESTED


def upload(d: UUID) -> DocumentUploaded:
    first = successful(d)[0]
    assert isinstance(first, DocumentUploaded)
    return first


def asked(d: UUID, first: int = 9, total: int = 16, at: float = 2) -> DocumentProgressed:
    """The extractor read pages 1..first-1 and asked the OCR stage for the rest."""
    return DocumentProgressed(
        **envelope(d, at), stage=Stage.EXTRACTING, done=first - 1, total=total, ocr_from=first
    )


def ocr_page(d: UUID, page: int, total: int = 16) -> DocumentProgressed:
    return DocumentProgressed(
        **envelope(d, 3 + page), stage=Stage.EXTRACTING, done=page - 1, total=total, ocr_page=page
    )


def waiting(d: UUID, *events: DocumentProgressed) -> DocumentState:
    return reduce(evolve, [upload(d), asked(d), *events], None)


def test_a_scan_whose_pages_wait_for_the_ocr_stage_says_so() -> None:
    d = uuid4()
    state = waiting(d)
    assert state.waiting_for is QueueStage.OCR
    assert state.message == "Waiting for OCR: pages 9-16"
    # Once the OCR consumer reads, it says which page; it still waits for OCR.
    state = evolve(state, ocr_page(d, 9))
    assert state.waiting_for is QueueStage.OCR
    assert state.message == "Extracting text: OCR page 9 of 16"
    # The extractor has every answer and cuts the document: then the embedder.
    cut = TextExtracted(
        **envelope(d, 30), batch=0, chunks=chunks(0, 2), last=True, chunks_total=2, pages=16
    )
    assert evolve(state, cut).waiting_for is QueueStage.EMBEDDING
    # One page only.
    one = reduce(evolve, [upload(d), asked(d, 16, 16)], None)
    assert one.message == "Waiting for OCR: page 16"


def test_the_wait_for_ocr_is_the_same_in_any_order_and_ends_with_a_retry() -> None:
    d = uuid4()
    events = [upload(d), asked(d), ocr_page(d, 9)]
    assert reduce(evolve, events, None).ocr_from == reduce(evolve, events[::-1], None).ocr_from == 9
    # The next attempt's first event starts it afresh (here, its reading's start).
    retry = DocumentProgressed(
        **envelope(d, 40), attempt=2, stage=Stage.EXTRACTING, done=0, total=16
    )
    again = evolve(reduce(evolve, events, None), retry)
    assert again.ocr_from is None
    assert again.waiting_for is None  # being read


def test_a_scan_stalled_while_waiting_for_ocr_names_the_ocr_consumer() -> None:
    d = uuid4()
    state = waiting(d)
    assert state.updated_at is not None
    stalled = evolve(
        state,
        DocumentStalled(**envelope(d, 400), since=state.updated_at, stage=Stage.EXTRACTING),
    )
    assert stalled.message.endswith("for OCR of pages 9-16 (is the OCR consumer running?)")


def ranges(attempt: int = 1, **where: tuple[int, ...]) -> list[QueueRecord]:
    """Ranges at (partition, offset) pairs: ranges(p0=(5,), p1=(3,))."""
    return [
        QueueRecord(OCR, int(p[1:]), attempt, offset, offset)
        for p, offsets in where.items()
        for offset in offsets
    ]


def ocr_view(
    committed: dict[int, int],
    end: dict[int, int],
    by_document: dict[UUID, list[QueueRecord]],
    *,
    rate: float | None = 0.5,
    moved_at: datetime | None = None,
) -> QueueView:
    partitions = {(OCR, p): PartitionQueue(committed[p], end[p], moved_at) for p in committed}
    partitions |= {(topics.EXTRACTED, p): PartitionQueue(0, 0) for p in committed}
    return QueueView(
        measured_at=NOW,
        partitions=partitions,
        rates={OCR: rate, topics.EXTRACTED: None},
        ranges=by_document,
    )


def test_a_scan_is_in_the_ocr_stages_queue_behind_the_ranges_ahead_of_its_own() -> None:
    d, a, b, behind = uuid4(), uuid4(), uuid4(), uuid4()
    view = ocr_view(
        {0: 4, 1: 2},
        {0: 7, 1: 4},
        {
            d: ranges(p0=(5,), p1=(3,)),
            a: ranges(p0=(4,)),  # ahead on partition 0
            b: ranges(p0=(6,), p1=(2,)),  # behind on 0, ahead on 1
            behind: ranges(p1=(7,)),
        },
    )
    guess = estimate(waiting(d), view)
    assert guess.queue_stage is QueueStage.OCR
    assert guess.queue_position == 2
    # Up to 2 records deep on its partitions: 2 on partition 0, 2 on 1, at 0.5 a second.
    assert guess.estimated_completion_at == NOW + timedelta(seconds=4 / 0.5)
    # Its ranges not seen yet, or no rate: no estimate.
    assert estimate(waiting(uuid4()), view).queue_position is None
    unknown = estimate(
        waiting(d), ocr_view({0: 4, 1: 2}, {0: 7, 1: 4}, {d: ranges(p0=(5,))}, rate=None)
    )
    assert unknown.estimated_completion_at is None
    # Every range read: nothing ahead of it at the OCR stage.
    read = estimate(waiting(d), ocr_view({0: 6, 1: 4}, {0: 7, 1: 4}, {d: ranges(p0=(5,), p1=(3,))}))
    assert (read.queue_position, read.estimated_completion_at) == (0, NOW)


def test_a_scan_waiting_behind_a_moving_ocr_consumer_is_not_stalled() -> None:
    d = uuid4()
    state = waiting(d)
    window = timedelta(seconds=60)
    mine = {d: ranges(p0=(5,), p1=(3,))}
    moving = ocr_view({0: 4, 1: 2}, {0: 7, 1: 4}, mine, moved_at=NOW - timedelta(seconds=10))
    assert waits_behind_moving_queue(state, moving, NOW, window)
    stopped = ocr_view({0: 4, 1: 2}, {0: 7, 1: 4}, mine, moved_at=NOW - timedelta(seconds=600))
    assert not waits_behind_moving_queue(state, stopped, NOW, window)
    # An earlier attempt's ranges are not this attempt's.
    older = ocr_view(
        {0: 4, 1: 2}, {0: 7, 1: 4}, {d: ranges(0, p0=(5,))}, moved_at=NOW - timedelta(seconds=10)
    )
    assert not waits_behind_moving_queue(state, older, NOW, window)
    # All its ranges read: whatever the OCR consumer does, it is not waiting on it.
    done = ocr_view({0: 6, 1: 4}, {0: 7, 1: 4}, mine, moved_at=NOW - timedelta(seconds=10))
    assert not waits_behind_moving_queue(state, done, NOW, window)


def test_the_status_consumer_reads_ocr_range_requests_beside_the_document_events() -> None:
    d = uuid4()
    request = OcrRangeRequested(
        **envelope(d, 2),
        content_type="application/pdf",
        blob_key=original_key("t1", d),
        first=9,
        last=16,
        page_count=16,
        range_index=1,
        range_count=2,
    )
    assert parse_input(request.model_dump_json().encode()) == request
    uploaded = upload(d)
    assert parse_input(uploaded.model_dump_json().encode()) == uploaded
    with pytest.raises(ValidationError, match="event_type"):
        parse_input(b'{"event_type": "docflow.nothing"}')


async def test_ocr_ranges_are_kept_per_attempt_and_forgotten_when_finished(
    read_model: SqlReadModel,
) -> None:
    queues = SqlQueues(read_model.engine)
    a, b = uuid4(), uuid4()
    await queues.note_records([], ranges=[(a, 0, 3, 10, 1), (a, 1, 4, 7, 1), (b, 0, 1, 2, 1)])
    # Redelivered: where it was first; sent again later: the first one counts.
    await queues.note_records([], ranges=[(a, 0, 3, 10, 1), (a, 1, 4, 9, 1)])
    # A later attempt's ranges replace the earlier attempt's.
    await queues.note_records([], ranges=[(b, 0, 5, 20, 2)])
    await queues.save_queues({(OCR, 3): PartitionQueue(0, 11)}, {OCR: 0.1}, NOW)
    view = await queues.load_view()
    assert sorted(view.ranges[a], key=lambda r: r.partition) == [
        QueueRecord(OCR, 3, 1, 10, 10),
        QueueRecord(OCR, 4, 1, 7, 7),
    ]
    assert view.ranges[b] == [QueueRecord(OCR, 5, 2, 20, 20)]
    await queues.note_records([], finished=[a])
    assert set((await queues.load_view()).ranges) == {b}
