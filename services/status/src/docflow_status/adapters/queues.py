"""The queues in SQL: where documents' records wait, and the stages' queues as last
measured (``domain/queues.py``), so that any replica's API reads the same view."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from docflow_shared import topics
from docflow_status.adapters.tables import (
    OcrRangeRecordRow,
    PartitionQueueRow,
    QueueRecordRow,
    StageRateRow,
)
from docflow_status.domain.queues import PartitionQueue, QueueRecord, QueueView, RangeSeen, Seen

_CONFLICT_RETRIES = 3


class SqlQueues:
    """Writes what the projector learns of the queues; reads it back as one view."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def note_records(
        self,
        seen: Iterable[Seen],
        finished: Iterable[UUID] = (),
        ranges: Iterable[RangeSeen] = (),
    ) -> None:
        """Remember where these records (and OCR ``ranges``) are (a later attempt
        replaces an earlier one's), and forget the documents that are ``finished``."""
        seen, finished, ranges = list(seen), set(finished), list(ranges)
        if not seen and not finished and not ranges:
            return
        for attempt in range(_CONFLICT_RETRIES + 1):
            try:
                await self._note(seen, finished)
                await self._note_ranges(ranges, finished)
                return
            except IntegrityError:  # another replica wrote one first: read again
                if attempt == _CONFLICT_RETRIES:
                    raise

    async def _note(self, seen: list[Seen], finished: set[UUID]) -> None:
        async with self._sessions.begin() as session:
            rows = {
                (row.document_id, row.topic): row
                for row in await session.scalars(
                    select(QueueRecordRow).where(
                        QueueRecordRow.document_id.in_({s[0] for s in seen})
                    )
                )
            }
            for document_id, topic, partition, offset, attempt in seen:
                if document_id in finished:
                    continue
                row = rows.get((document_id, topic))
                if row is None or row.attempt < attempt:
                    if row is None:
                        row = rows[(document_id, topic)] = QueueRecordRow(
                            document_id=document_id, topic=topic
                        )
                        session.add(row)
                    row.attempt, row.partition = attempt, partition
                    row.first_offset = row.last_offset = offset
                    row.records = 1
                elif row.attempt == attempt and row.partition == partition:
                    # A redelivered record changes nothing; a new one is later.
                    if offset > row.last_offset:
                        row.records += 1
                    row.first_offset = min(row.first_offset, offset)
                    row.last_offset = max(row.last_offset, offset)
            if finished:
                await session.execute(
                    delete(QueueRecordRow).where(QueueRecordRow.document_id.in_(finished))
                )

    async def _note_ranges(self, seen: list[RangeSeen], finished: set[UUID]) -> None:
        async with self._sessions.begin() as session:
            rows: dict[UUID, list[OcrRangeRecordRow]] = {}
            for row in await session.scalars(
                select(OcrRangeRecordRow).where(
                    OcrRangeRecordRow.document_id.in_({s[0] for s in seen})
                )
            ):
                rows.setdefault(row.document_id, []).append(row)
            for document_id, index, partition, offset, attempt in seen:
                kept = rows.setdefault(document_id, [])
                if document_id in finished or any(r.attempt > attempt for r in kept):
                    continue
                for row in [r for r in kept if r.attempt < attempt]:
                    await session.delete(row)  # an earlier attempt's ranges
                    kept.remove(row)
                found = next((r for r in kept if r.range_index == index), None)
                if found is None:
                    found = OcrRangeRecordRow(
                        document_id=document_id,
                        range_index=index,
                        attempt=attempt,
                        partition=partition,
                        offset=offset,
                    )
                    session.add(found)
                    kept.append(found)
                elif offset < found.offset:  # a request sent again: the first one counts
                    found.attempt, found.partition, found.offset = attempt, partition, offset
            if finished:
                await session.execute(
                    delete(OcrRangeRecordRow).where(OcrRangeRecordRow.document_id.in_(finished))
                )

    async def save_queues(
        self,
        partitions: Mapping[tuple[str, int], PartitionQueue],
        rates: Mapping[str, float | None],
        at: datetime,
    ) -> None:
        """Replace the measured queues and rates with these."""
        async with self._sessions.begin() as session:
            await session.execute(delete(PartitionQueueRow))
            await session.execute(delete(StageRateRow))
            session.add_all(
                PartitionQueueRow(
                    topic=topic,
                    partition=partition,
                    committed=queue.committed,
                    end_offset=queue.end,
                    moved_at=queue.moved_at,
                    measured_at=at,
                )
                for (topic, partition), queue in partitions.items()
            )
            session.add_all(
                StageRateRow(topic=topic, rate=rate, measured_at=at)
                for topic, rate in rates.items()
            )

    async def load_view(self) -> QueueView:
        """The queues as last measured, with every unfinished document's records."""
        async with self._sessions() as session:
            queues = list(await session.scalars(select(PartitionQueueRow)))
            rates = list(await session.scalars(select(StageRateRow)))
            records = list(await session.scalars(select(QueueRecordRow)))
            ranges = list(await session.scalars(select(OcrRangeRecordRow)))
        if not queues:
            return QueueView()
        by_document: dict[UUID, dict[str, QueueRecord]] = {}
        for row in records:
            by_document.setdefault(row.document_id, {})[row.topic] = QueueRecord(
                topic=row.topic,
                partition=row.partition,
                attempt=row.attempt,
                first_offset=row.first_offset,
                last_offset=row.last_offset,
                records=row.records,
            )
        by_range: dict[UUID, list[QueueRecord]] = {}
        for each in ranges:
            by_range.setdefault(each.document_id, []).append(
                QueueRecord(
                    topics.OCR_REQUESTED, each.partition, each.attempt, each.offset, each.offset
                )
            )
        return QueueView(
            measured_at=min(row.measured_at for row in queues),
            partitions={
                (row.topic, row.partition): PartitionQueue(
                    row.committed, row.end_offset, row.moved_at
                )
                for row in queues
            },
            rates={row.topic: row.rate for row in rates},
            records=by_document,
            ranges=by_range,
        )
