"""Waiting is not stalling: queue positions and estimated completion times.

Each stage reads its input topic in a consumer group: the extractor the
uploads (``docflow-extractor``; retries from their own topic), the embedder
the chunk batches (``docflow-embedder``). A document waits at a stage while
its record on that topic is beyond the group's committed offset. The status
service learns where each document's records are as it reads them (it reads
the same topics: ``QueueRecord``), and the projector measures every few
seconds where each group is on each partition (committed and end offsets)
and how fast it goes (``QueueView``); the API reads that view, never Kafka.

**Documents vs records.** A document has one record on the uploads topic,
and one record per chunk batch (one for a short document) on the chunks
topic, all on one partition (keyed by document id). Offsets count records;
the queue position counts documents: those whose records wait on the same
partition and start before this one's, plus, on every other partition, as
many waiting documents as that (a group reads its partitions in turn, so it
gets that far on each before it reaches this one), or all if fewer wait
there. Throughput is in records a second, as the offsets count.

**The estimate** is the time until the stage's group has read past the
document's last record at the stage it is at, and, for a document not yet
extracted, past where its chunks will be put behind the chunk batches
already waiting and those of the documents ahead of it:
``sum over partitions of min(records waiting there, records up to this one)
/ the group's rate``. The rate is measured over the last minute in which the
group had work (records committed a second). A stage with work waiting whose
rate is not known yet (or is 0: it does not move) gives no estimate; the
embedder with nothing waiting and no rate yet is left out of the estimate of a
document not yet extracted.

**OCR.** A scan's pages without a text layer are read by the OCR consumer
(group ``docflow-extractor-ocr``) in ranges the extractor requests on
``docflow.ocr.requested.v1``, keyed so that they spread over its partitions:
one record a range. The status service reads that topic too and keeps where
each range is (``ranges``). While the extractor waits for their answers
(``waiting_for: ocr``), the document's queue is the OCR stage's: it waits
until the group has read past its last range on each partition; its position
counts the other documents with a range waiting before one of its own on the
same partition, and the estimate is the OCR group's drain up to its deepest
range (ranges a second), then its chunks' embedding as above.

**Stalled** means no progress while the work ahead does not move either: a
quiet document whose record (for OCR: any of its ranges) still waits on its
stage's input topic, where the stage's group committed further (on any
partition) within the stall limit, is waiting, not stalled. A document its
stage has read (its record is committed) and that reports nothing for that
long is stalled.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from uuid import UUID

from docflow_shared import topics
from docflow_status.domain.projection import TERMINAL, DocumentState
from docflow_status.domain.stages import QueueStage

# The input topic of each stage whose queue is measured, and its consumer group.
INPUTS: dict[str, str] = {
    topics.UPLOADED: "docflow-extractor",
    topics.RETRIED: "docflow-extractor-retried",
    topics.EXTRACTED: "docflow-embedder",
    topics.OCR_REQUESTED: "docflow-extractor-ocr",
}

# (document, topic, partition, offset, attempt) of one work record read.
Seen = tuple[UUID, str, int, int, int]
# (document, range index, partition, offset, attempt) of one OCR range read.
RangeSeen = tuple[UUID, int, int, int, int]


@dataclass(frozen=True)
class QueueRecord:
    """A document's records of one attempt on one stage's input topic."""

    topic: str
    partition: int
    attempt: int
    first_offset: int
    last_offset: int
    # How many records (chunk batches on the chunks topic; 1 on the others).
    records: int = 1


@dataclass(frozen=True)
class PartitionQueue:
    """A stage's consumer group on one partition of its input topic."""

    committed: int
    end: int
    # When the committed offset was last seen to advance.
    moved_at: datetime | None = None

    @property
    def backlog(self) -> int:
        return max(0, self.end - self.committed)


@dataclass(frozen=True)
class QueueView:
    """The stages' queues as last measured, and the unfinished documents' records."""

    measured_at: datetime | None = None
    partitions: Mapping[tuple[str, int], PartitionQueue] = field(default_factory=dict)
    # Records a second each input topic's group commits while it has work.
    rates: Mapping[str, float | None] = field(default_factory=dict)
    records: Mapping[UUID, Mapping[str, QueueRecord]] = field(default_factory=dict)
    # The unfinished documents' OCR ranges on docflow.ocr.requested.v1, one record each.
    ranges: Mapping[UUID, Sequence[QueueRecord]] = field(default_factory=dict)

    @cached_property
    def _waiting(self) -> dict[tuple[str, int], list[int]]:
        """Per partition, the first offsets of the documents still waiting there."""
        waiting: dict[tuple[str, int], list[int]] = {}
        for by_topic in self.records.values():
            for record in by_topic.values():
                queue = self.partitions.get((record.topic, record.partition))
                if queue is not None and record.last_offset >= queue.committed:
                    waiting.setdefault((record.topic, record.partition), []).append(
                        record.first_offset
                    )
        for offsets in waiting.values():
            offsets.sort()
        return waiting

    @cached_property
    def _ocr_waiting(self) -> dict[int, list[tuple[int, UUID]]]:
        """Per partition of the OCR topic, (offset, document) of every range waiting."""
        waiting: dict[int, list[tuple[int, UUID]]] = {}
        for document, ranges in self.ranges.items():
            for record in ranges:
                queue = self.partitions.get((record.topic, record.partition))
                if queue is not None and record.last_offset >= queue.committed:
                    waiting.setdefault(record.partition, []).append((record.last_offset, document))
        return waiting

    def ocr_ahead(self, document: UUID, deepest: Mapping[int, int]) -> int:
        """Other documents with an OCR range waiting before ``document``'s last one
        (``deepest``: offset by partition) on the same partition."""
        return len(
            {
                other
                for partition, mine in deepest.items()
                for offset, other in self._ocr_waiting.get(partition, [])
                if offset < mine and other != document
            }
        )

    def waiting(self, topic: str, partition: int) -> Sequence[int]:
        """The first offsets of the documents waiting on ``topic``'s ``partition``."""
        return self._waiting.get((topic, partition), [])

    def backlogs(self, topic: str) -> dict[int, int]:
        """Records not committed yet, by partition of ``topic``."""
        return {p: q.backlog for (t, p), q in self.partitions.items() if t == topic}

    def records_per_document(self) -> float:
        """Chunk batches per document, over the documents cut and not finished (1
        when there are none)."""
        counts = [
            r[topics.EXTRACTED].records for r in self.records.values() if topics.EXTRACTED in r
        ]
        return sum(counts) / len(counts) if counts else 1.0


@dataclass(frozen=True)
class Estimate:
    """Where a document is in the queue of the stage it is at, and when it should be done."""

    # The stage whose queue it is in (extracting, ocr or embedding).
    queue_stage: QueueStage | None = None
    # Documents ahead of it at that stage (see the module's docstring).
    queue_position: int | None = None
    estimated_completion_at: datetime | None = None


NO_ESTIMATE = Estimate()


def _drain_s(rate: float | None, backlogs: Mapping[int, float], upto: float) -> float | None:
    """Seconds until a group reading its partitions in turn has read ``upto``
    records of one of them; None if it must read and its rate is unknown."""
    work = sum(min(backlog, upto) for backlog in backlogs.values())
    if work <= 0:
        return 0.0
    if not rate or rate <= 0:
        return None
    return work / rate


def _position(view: QueueView, record: QueueRecord) -> int:
    mine = bisect.bisect_left(view.waiting(record.topic, record.partition), record.first_offset)
    others = sum(
        min(len(view.waiting(topic, partition)), mine)
        for topic, partition in view.partitions
        if topic == record.topic and partition != record.partition
    )
    return mine + others


def current_record(state: DocumentState, view: QueueView) -> QueueRecord | None:
    """The record of ``state``'s attempt at the furthest stage it reached: its last
    chunk batch once it is cut, else its upload (or retry request)."""
    records = view.records.get(state.id, {})
    for topic in (topics.EXTRACTED, topics.RETRIED, topics.UPLOADED):
        record = records.get(topic)
        if record is not None and record.attempt == state.attempt:
            return record
    return None


def waiting_ranges(state: DocumentState, view: QueueView) -> dict[int, int]:
    """Of ``state``'s attempt's OCR ranges not yet read past (waiting, or being read),
    the deepest offset by partition."""
    deepest: dict[int, int] = {}
    for record in view.ranges.get(state.id, ()):
        queue = view.partitions.get((record.topic, record.partition))
        if (
            record.attempt == state.attempt
            and queue is not None
            and record.last_offset >= queue.committed
        ):
            deepest[record.partition] = max(record.last_offset, deepest.get(record.partition, -1))
    return deepest


def _embedding_after(view: QueueView, partition: int | None, documents: float) -> float | None:
    """Seconds until the embedder has read the chunks waiting now on ``partition``
    (keyed as the document) and ``documents`` documents' more; 0 with none waiting
    and no rate measured (no bottleneck yet)."""
    chunks = view.backlogs(topics.EXTRACTED)
    per_document = view.records_per_document()
    later = {p: backlog + per_document * documents for p, backlog in chunks.items()}
    upto = chunks.get(partition, 0) + per_document * documents if partition is not None else 0
    embedding = _drain_s(view.rates.get(topics.EXTRACTED), later, upto)
    if embedding is None and not any(chunks.values()):
        return 0.0
    return embedding


def _ocr_estimate(state: DocumentState, view: QueueView) -> Estimate:
    """A document whose extractor waits for its OCR ranges (``waiting_for: ocr``)."""
    assert view.measured_at is not None
    if not any(r.attempt == state.attempt for r in view.ranges.get(state.id, ())):
        return NO_ESTIMATE  # its ranges not read by the status service yet
    deepest = waiting_ranges(state, view)
    upto = (
        max(
            (offset + 1 - view.partitions[(topics.OCR_REQUESTED, p)].committed)
            for p, offset in deepest.items()
        )
        if deepest
        else 0
    )
    seconds = _drain_s(
        view.rates.get(topics.OCR_REQUESTED), view.backlogs(topics.OCR_REQUESTED), upto
    )
    upload = current_record(state, view)
    if seconds is not None:
        embedding = _embedding_after(view, upload.partition if upload else None, 1)
        seconds = None if embedding is None else max(seconds, embedding)
    return Estimate(
        queue_stage=QueueStage.OCR,
        queue_position=view.ocr_ahead(state.id, deepest),
        estimated_completion_at=(
            None if seconds is None else view.measured_at + timedelta(seconds=seconds)
        ),
    )


def estimate(state: DocumentState, view: QueueView) -> Estimate:
    """``state``'s queue position and estimated completion, from ``view``."""
    if state.status in TERMINAL or state.deleted_at is not None or view.measured_at is None:
        return NO_ESTIMATE
    if state.waiting_for is QueueStage.OCR:
        return _ocr_estimate(state, view)
    record = current_record(state, view)
    queue = view.partitions.get((record.topic, record.partition)) if record else None
    if record is None or queue is None:
        return NO_ESTIMATE
    upto = max(0, record.last_offset + 1 - queue.committed)
    position = _position(view, record) if upto else 0
    stage_rate = view.rates.get(record.topic)
    seconds = _drain_s(stage_rate, view.backlogs(record.topic), upto)
    stage = QueueStage.EMBEDDING if record.topic == topics.EXTRACTED else QueueStage.EXTRACTING
    if stage is QueueStage.EXTRACTING and seconds is not None:
        # Its chunks will wait behind those waiting now and those of the
        # documents ahead of it, on the partition of the same number (keyed alike).
        per_document = view.records_per_document()
        chunks = view.backlogs(topics.EXTRACTED)
        later = {
            p: chunks.get(p, 0) + per_document * backlog
            for p, backlog in view.backlogs(record.topic).items()
        }
        upto_chunks = chunks.get(record.partition, 0) + per_document * upto
        embedding = _drain_s(view.rates.get(topics.EXTRACTED), later, upto_chunks)
        if embedding is None and not any(chunks.values()):
            embedding = 0.0  # nothing waits there now: not measured, but no bottleneck yet
        seconds = None if embedding is None else max(seconds, embedding)
    return Estimate(
        queue_stage=stage,
        queue_position=position,
        estimated_completion_at=(
            None if seconds is None else view.measured_at + timedelta(seconds=seconds)
        ),
    )


def waits_behind_moving_queue(
    state: DocumentState, view: QueueView, now: datetime, window: timedelta
) -> bool:
    """Whether ``state``'s record still waits on its stage's input topic and the stage's
    group committed further on that topic within ``window`` (then it is waiting, not
    stalled). The whole group counts, not the record's partition alone: a consumer
    may read one partition's backlog for a while before it turns to the next. A
    document waiting for OCR waits on the OCR topic while any of its ranges does."""
    if state.waiting_for is QueueStage.OCR:
        if not waiting_ranges(state, view):
            return False
        moves = [q.moved_at for (t, _), q in view.partitions.items() if t == topics.OCR_REQUESTED]
        return any(at is not None and now - at <= window for at in moves)
    record = current_record(state, view)
    queue = view.partitions.get((record.topic, record.partition)) if record else None
    if record is None or queue is None or record.last_offset < queue.committed:
        return False
    moves = [q.moved_at for (t, _), q in view.partitions.items() if t == record.topic]
    return any(at is not None and now - at <= window for at in moves)
