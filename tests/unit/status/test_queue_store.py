"""The queues in the read model (adapters/queues.py): where documents' records wait,
and the measured queues, as the API reads them back; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from docflow_shared import topics
from docflow_status.adapters.queues import SqlQueues
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.domain.queues import PartitionQueue, QueueRecord

NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)


async def test_records_are_kept_per_attempt_once_each_and_forgotten_when_finished(
    read_model: SqlReadModel,
) -> None:
    queues = SqlQueues(read_model.engine)
    a, b = uuid4(), uuid4()
    await queues.note_records(
        [
            (a, topics.UPLOADED, 2, 10, 1),
            (a, topics.EXTRACTED, 2, 40, 1),
            (a, topics.EXTRACTED, 2, 43, 1),
            (b, topics.UPLOADED, 0, 11, 1),
        ]
    )
    # A redelivered record changes nothing; a later batch of the same attempt does.
    await queues.note_records([(a, topics.EXTRACTED, 2, 43, 1), (a, topics.EXTRACTED, 2, 47, 1)])
    # A later attempt's record replaces the earlier attempt's on the same topic.
    await queues.note_records([(b, topics.UPLOADED, 0, 12, 2)])
    await queues.save_queues(
        {
            (topics.UPLOADED, 2): PartitionQueue(5, 20, NOW),
            (topics.EXTRACTED, 2): PartitionQueue(0, 50),
        },
        {topics.UPLOADED: 2.5, topics.EXTRACTED: None},
        NOW,
    )
    view = await queues.load_view()
    assert view.measured_at == NOW
    assert view.partitions[(topics.UPLOADED, 2)] == PartitionQueue(5, 20, NOW)
    assert view.rates == {topics.UPLOADED: 2.5, topics.EXTRACTED: None}
    assert view.records[a][topics.EXTRACTED] == QueueRecord(topics.EXTRACTED, 2, 1, 40, 47, 3)
    assert view.records[a][topics.UPLOADED] == QueueRecord(topics.UPLOADED, 2, 1, 10, 10, 1)
    assert view.records[b][topics.UPLOADED] == QueueRecord(topics.UPLOADED, 0, 2, 12, 12, 1)
    # Finished: forgotten, even if one of its records comes in the same batch.
    await queues.note_records([(a, topics.EXTRACTED, 2, 48, 1)], finished=[a])
    view = await queues.load_view()
    assert set(view.records) == {b}
    # The next measurement replaces the last.
    await queues.save_queues({(topics.UPLOADED, 0): PartitionQueue(12, 13)}, {}, NOW)
    view = await queues.load_view()
    assert list(view.partitions) == [(topics.UPLOADED, 0)]
    assert view.rates == {}


async def test_nothing_measured_yet_is_an_empty_view(read_model: SqlReadModel) -> None:
    view = await SqlQueues(read_model.engine).load_view()
    assert view.measured_at is None
    assert view.records == {}
