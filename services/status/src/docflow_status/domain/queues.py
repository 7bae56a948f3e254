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

**Stalled** means no progress while the work ahead does not move either: a
quiet document whose record still waits on its stage's input topic, where the
stage's group committed further (on any partition) within the stall limit,
is waiting, not stalled. A document its stage has read (its record is
committed) and that reports nothing for that long is stalled.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from uuid import UUID

from docflow_shared import topics
from docflow_shared.events import Stage
from docflow_status.domain.projection import TERMINAL, DocumentState

# The input topic of each stage whose queue is measured, and its consumer group.
INPUTS: dict[str, str] = {
    topics.UPLOADED: "docflow-extractor",
    topics.RETRIED: "docflow-extractor-retried",
    topics.EXTRACTED: "docflow-embedder",
}

# (document, topic, partition, offset, attempt) of one work record read.
Seen = tuple[UUID, str, int, int, int]


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

    # The stage whose queue it is in (extracting or embedding).
    queue_stage: Stage | None = None
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


def estimate(state: DocumentState, view: QueueView) -> Estimate:
    """``state``'s queue position and estimated completion, from ``view``."""
    if state.status in TERMINAL or state.deleted_at is not None or view.measured_at is None:
        return NO_ESTIMATE
    record = current_record(state, view)
    queue = view.partitions.get((record.topic, record.partition)) if record else None
    if record is None or queue is None:
        return NO_ESTIMATE
    upto = max(0, record.last_offset + 1 - queue.committed)
    position = _position(view, record) if upto else 0
    stage_rate = view.rates.get(record.topic)
    seconds = _drain_s(stage_rate, view.backlogs(record.topic), upto)
    stage = Stage.EMBEDDING if record.topic == topics.EXTRACTED else Stage.EXTRACTING
    if stage is Stage.EXTRACTING and seconds is not None:
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
    may read one partition's backlog for a while before it turns to the next."""
    record = current_record(state, view)
    queue = view.partitions.get((record.topic, record.partition)) if record else None
    if record is None or queue is None or record.last_offset < queue.committed:
        return False
    moves = [q.moved_at for (t, _), q in view.partitions.items() if t == record.topic]
    return any(at is not None and now - at <= window for at in moves)
