"""Waiting is not stalling (issue 23): the stage a document waits for, its queue
position and estimated completion from the stages' offsets, and the watchdog that
leaves a document waiting behind a moving queue alone."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import reduce
from uuid import UUID, uuid4

from aiokafka import TopicPartition

from docflow_shared import topics
from docflow_shared.events import (
    DocumentProgressed,
    DocumentStalled,
    DocumentUploaded,
    Event,
    Stage,
    TextExtracted,
)
from docflow_status.domain.projection import DocumentState, evolve
from docflow_status.domain.queues import (
    PartitionQueue,
    QueueRecord,
    QueueView,
    estimate,
    waits_behind_moving_queue,
)
from docflow_status.domain.stages import QueueStage
from docflow_status.entrypoints.queues import QueueSampler, _busy_rate, _Sample
from docflow_status.handlers import Watchdog
from support.histories import chunks, envelope, successful

NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)


def upload(d: UUID) -> DocumentUploaded:
    first = successful(d)[0]
    assert isinstance(first, DocumentUploaded)
    return first


def cut(d: UUID, total: int = 3) -> TextExtracted:
    return TextExtracted(
        **envelope(d, 2), batch=0, chunks=chunks(0, total), last=True, chunks_total=total, pages=1
    )


def test_an_uploaded_document_waits_for_extraction() -> None:
    state = evolve(None, upload(uuid4()))
    assert state.waiting_for is QueueStage.EXTRACTING


def test_a_cut_document_waits_for_embedding_and_says_so() -> None:
    d = uuid4()
    state = reduce(
        evolve,
        [
            upload(d),
            DocumentProgressed(**envelope(d, 1), stage=Stage.EXTRACTING, done=1, total=1),
            cut(d),
        ],
        None,
    )
    # The extractor is done with it: no longer "extracting", but waiting.
    assert state.stage is Stage.EXTRACTING
    assert state.waiting_for is QueueStage.EMBEDDING
    assert state.message == "Waiting for embedding: 3 chunks extracted"
    embedding = evolve(
        state, DocumentProgressed(**envelope(d, 3), stage=Stage.EMBEDDING, done=2, total=3)
    )
    assert embedding.waiting_for is None
    assert embedding.message == "Embedded 2 of 3 chunks"


def test_a_document_being_read_waits_for_nothing() -> None:
    d = uuid4()
    state = reduce(
        evolve,
        [upload(d), DocumentProgressed(**envelope(d, 1), stage=Stage.EXTRACTING, done=1, total=5)],
        None,
    )
    assert state.waiting_for is None
    assert reduce(evolve, successful(d), None).waiting_for is None


def pending(d: UUID) -> DocumentState:
    return evolve(None, upload(d))


def record(topic: str, partition: int, offset: int, last: int | None = None) -> QueueRecord:
    return QueueRecord(topic, partition, 1, offset, offset if last is None else last)


def uploads_view(
    committed: dict[int, int],
    end: dict[int, int],
    records: dict[UUID, dict[str, QueueRecord]],
    *,
    rate: float | None = 2.0,
    chunk_rate: float | None = None,
    moved_at: datetime | None = None,
) -> QueueView:
    partitions = {
        (topics.UPLOADED, p): PartitionQueue(committed[p], end[p], moved_at) for p in committed
    }
    partitions |= {(topics.EXTRACTED, p): PartitionQueue(0, 0) for p in committed}
    return QueueView(
        measured_at=NOW,
        partitions=partitions,
        rates={topics.UPLOADED: rate, topics.EXTRACTED: chunk_rate},
        records=records,
    )


def test_the_queue_position_counts_documents_ahead_on_every_partition() -> None:
    # Partition 0: documents at offsets 10..19 wait (committed 10); partition 1:
    # three wait. The 6th on partition 0 has 5 ahead there and 3 on partition 1
    # (the group reads both in turn, and partition 1 has only 3).
    ids = [uuid4() for _ in range(13)]
    records = {d: {topics.UPLOADED: record(topics.UPLOADED, 0, 10 + i)} for i, d in enumerate(ids)}
    records |= {
        d: {topics.UPLOADED: record(topics.UPLOADED, 1, 4 + i)} for i, d in enumerate(ids[10:])
    }
    view = uploads_view({0: 10, 1: 4}, {0: 20, 1: 7}, records)
    sixth = estimate(pending(ids[5]), view)
    assert sixth.queue_stage is QueueStage.EXTRACTING
    assert sixth.queue_position == 5 + 3
    assert estimate(pending(ids[0]), view).queue_position == 0
    # Six records to read on partition 0 and three on 1, at 2 a second; the
    # embedder is idle with nothing waiting, so costs nothing.
    assert sixth.estimated_completion_at == NOW + timedelta(seconds=(6 + 3) / 2)


def test_the_estimate_and_the_position_fall_as_the_stage_reads_on() -> None:
    ids = [uuid4() for _ in range(40)]
    records = {d: {topics.UPLOADED: record(topics.UPLOADED, 0, i)} for i, d in enumerate(ids)}
    before = estimate(pending(ids[30]), uploads_view({0: 0}, {0: 40}, records))
    after = estimate(pending(ids[30]), uploads_view({0: 20}, {0: 40}, records))
    assert (before.queue_position, after.queue_position) == (30, 10)
    assert before.estimated_completion_at == NOW + timedelta(seconds=31 / 2)
    assert after.estimated_completion_at == NOW + timedelta(seconds=11 / 2)


def test_no_estimate_without_a_rate_or_for_a_finished_document() -> None:
    d = uuid4()
    records = {d: {topics.UPLOADED: record(topics.UPLOADED, 0, 5)}}
    unknown = estimate(pending(d), uploads_view({0: 0}, {0: 6}, records, rate=None))
    assert unknown.queue_position == 0
    assert unknown.estimated_completion_at is None
    stuck = estimate(pending(d), uploads_view({0: 0}, {0: 6}, records, rate=0.0))
    assert stuck.estimated_completion_at is None
    done = reduce(evolve, successful(d), None)
    assert estimate(done, uploads_view({0: 0}, {0: 6}, records)).queue_position is None


def test_a_document_not_extracted_yet_waits_behind_the_chunks_ahead_of_it_too() -> None:
    # The extractor is fast (100 records/s); 50 chunk batches already wait for
    # the embedder at 1 a second: the embedder decides.
    d = uuid4()
    records = {d: {topics.UPLOADED: record(topics.UPLOADED, 0, 0)}}
    view = uploads_view({0: 0}, {0: 1}, records, rate=100.0, chunk_rate=1.0)
    view = QueueView(
        measured_at=NOW,
        partitions={**view.partitions, (topics.EXTRACTED, 0): PartitionQueue(0, 50)},
        rates=view.rates,
        records=records,
    )
    guess = estimate(pending(d), view)
    assert guess.estimated_completion_at == NOW + timedelta(seconds=51)


def test_a_cut_document_is_in_the_embedders_queue() -> None:
    d, ahead = uuid4(), uuid4()
    records = {
        ahead: {topics.EXTRACTED: record(topics.EXTRACTED, 2, 7, 9)},
        d: {
            topics.UPLOADED: record(topics.UPLOADED, 2, 3),
            topics.EXTRACTED: record(topics.EXTRACTED, 2, 10, 11),
        },
    }
    view = QueueView(
        measured_at=NOW,
        partitions={
            (topics.UPLOADED, 2): PartitionQueue(4, 4),
            (topics.EXTRACTED, 2): PartitionQueue(8, 12),
        },
        rates={topics.UPLOADED: 5.0, topics.EXTRACTED: 2.0},
        records=records,
    )
    state = reduce(evolve, [upload(d), cut(d)], None)
    guess = estimate(state, view)
    assert (guess.queue_stage, guess.queue_position) == (QueueStage.EMBEDDING, 1)
    assert guess.estimated_completion_at == NOW + timedelta(seconds=(12 - 8) / 2)


def samples(*points: tuple[float, int, int]) -> deque[_Sample]:
    return deque(_Sample(NOW + timedelta(seconds=t), c, b) for t, c, b in points)


def test_the_rate_is_measured_while_the_stage_has_work_all_along() -> None:
    # Idle, then 100 records arrive and are read 10 every 5 s.
    busy = samples((0, 0, 0), (5, 0, 0), (10, 0, 100), (15, 10, 90), (20, 20, 80))
    assert _busy_rate(busy, None) == 20 / 10
    # Drained meanwhile: the last interval, which ends with nothing waiting,
    # does not count (the group may have been idle for part of it).
    drained = samples((0, 0, 100), (5, 50, 50), (10, 100, 0))
    assert _busy_rate(drained, None) == 50 / 5
    # One record read within an interval: only "at least that fast"; the rate
    # measured before stays.
    assert _busy_rate(samples((0, 0, 1), (5, 1, 0)), 3.0) == 3.0
    assert _busy_rate(samples((0, 0, 1), (5, 1, 0)), None) is None
    # Nothing to do all along: the rate measured before is kept.
    assert _busy_rate(samples((0, 5, 0), (5, 5, 0)), 3.0) == 3.0
    # Work waits and nothing is read: it does not move.
    assert _busy_rate(samples((0, 5, 10), (5, 5, 10)), 3.0) == 0.0


def quiet_for_an_hour(d: UUID) -> DocumentState:
    old = upload(d).model_copy(update={"occurred_at": NOW - timedelta(hours=1)})
    return evolve(None, old)


def test_waiting_behind_a_moving_queue_is_not_stalling() -> None:
    d = uuid4()
    records = {d: {topics.UPLOADED: record(topics.UPLOADED, 0, 50)}}
    window = timedelta(minutes=5)
    moving = uploads_view({0: 10}, {0: 60}, records, moved_at=NOW - timedelta(seconds=20))
    assert waits_behind_moving_queue(quiet_for_an_hour(d), moving, NOW, window)
    still = uploads_view({0: 10}, {0: 60}, records, moved_at=NOW - timedelta(minutes=6))
    assert not waits_behind_moving_queue(quiet_for_an_hour(d), still, NOW, window)
    never = uploads_view({0: 10}, {0: 60}, records, moved_at=None)
    assert not waits_behind_moving_queue(quiet_for_an_hour(d), never, NOW, window)
    # Read by its stage already, and quiet since: stalled, however the queue moves.
    read = uploads_view({0: 51}, {0: 60}, records, moved_at=NOW)
    assert not waits_behind_moving_queue(quiet_for_an_hour(d), read, NOW, window)
    # The group moved on another partition: the record's turn comes.
    other = QueueView(
        measured_at=NOW,
        partitions={
            (topics.UPLOADED, 0): PartitionQueue(10, 60, None),
            (topics.UPLOADED, 1): PartitionQueue(5, 9, NOW - timedelta(seconds=3)),
        },
        records=records,
    )
    assert waits_behind_moving_queue(quiet_for_an_hour(d), other, NOW, window)


class Quiet:
    def __init__(self, *states: DocumentState) -> None:
        self.states = sorted(states, key=lambda s: (s.updated_at, s.id))

    async def quiet_since(
        self, cutoff: datetime, limit: int, after: tuple[datetime, UUID] | None = None
    ) -> list[DocumentState]:
        return [
            s
            for s in self.states
            if s.updated_at is not None
            and s.updated_at < cutoff
            and (after is None or (s.updated_at, s.id) > after)
        ][:limit]


async def test_the_watchdog_announces_only_documents_whose_queue_does_not_move() -> None:
    # Many documents wait on the uploads topic, where the extractor moves; one
    # waits for the embedder, which does not move. More than a page of the
    # waiting ones come first.
    moving = [uuid4() for _ in range(7)]
    stuck = uuid4()
    states = [quiet_for_an_hour(d) for d in moving]
    states.append(
        evolve(None, upload(stuck).model_copy(update={"occurred_at": NOW - timedelta(minutes=30)}))
    )
    states[-1] = evolve(
        states[-1], cut(stuck).model_copy(update={"occurred_at": NOW - timedelta(minutes=30)})
    )
    records = {
        d: {topics.UPLOADED: record(topics.UPLOADED, 0, 10 + i)} for i, d in enumerate(moving)
    }
    records[stuck] = {topics.EXTRACTED: record(topics.EXTRACTED, 1, 3)}
    view = QueueView(
        measured_at=NOW,
        partitions={
            (topics.UPLOADED, 0): PartitionQueue(10, 20, NOW - timedelta(seconds=10)),
            (topics.UPLOADED, 1): PartitionQueue(3, 3, NOW - timedelta(hours=2)),
            (topics.EXTRACTED, 1): PartitionQueue(3, 4, NOW - timedelta(hours=2)),
        },
        records=records,
    )
    announced: list[Event] = []

    async def publish(event: Event) -> None:
        announced.append(event)

    async def queues() -> QueueView:
        return view

    watchdog = Watchdog(Quiet(*states), publish, stall_after=timedelta(minutes=5), queues=queues)
    stalls = await watchdog.sweep(NOW, limit=3)
    assert [s.document_id for s in stalls] == [stuck]
    assert all(isinstance(e, DocumentStalled) for e in announced)
    # Without the queues, as before: every quiet document.
    plain = Watchdog(Quiet(*states), publish, stall_after=timedelta(minutes=5))
    assert len(await plain.sweep(NOW, limit=100)) == 8


def test_a_document_stalled_while_waiting_for_the_embedder_says_so() -> None:
    d = uuid4()
    state = reduce(evolve, [upload(d), cut(d)], None)
    assert state.updated_at is not None
    stalled = evolve(
        state,
        DocumentStalled(**envelope(d, 400), since=state.updated_at, stage=Stage.EXTRACTING),
    )
    assert stalled.stalled
    assert stalled.message.startswith("Stalled: waiting since ")
    assert stalled.message.endswith("for the embedder to start (is it running?)")


class Store:
    def __init__(self, view: QueueView) -> None:
        self.view = view
        self.saved: list[dict[tuple[str, int], PartitionQueue]] = []

    async def save_queues(
        self,
        partitions: Mapping[tuple[str, int], PartitionQueue],
        rates: Mapping[str, float | None],
        at: datetime,
    ) -> None:
        self.saved.append(dict(partitions))
        self.view = QueueView(measured_at=at, partitions=dict(partitions), rates=dict(rates))

    async def load_view(self) -> QueueView:
        return self.view


async def test_a_restarted_sampler_remembers_when_each_partition_last_moved() -> None:
    moved = NOW - timedelta(seconds=30)
    store = Store(
        QueueView(
            measured_at=NOW - timedelta(seconds=5),
            partitions={(topics.UPLOADED, 0): PartitionQueue(10, 50, moved)},
        )
    )

    async def positions(inputs: Mapping[str, str]) -> dict[TopicPartition, tuple[int, int]]:
        return {TopicPartition(topics.UPLOADED, 0): (10, 60)}

    sampler = QueueSampler(positions, store, window=timedelta(seconds=60))
    await sampler.sample(NOW)
    assert store.saved[-1][(topics.UPLOADED, 0)] == PartitionQueue(10, 60, moved)
