"""The status service's subscriber: every document topic, and the re-embedding
operations' topics, into the read model."""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import ValidationError

from docflow_shared import topics
from docflow_shared.events import Event, ReindexEvent, parse_any
from docflow_shared.messaging import Publish, batch_subscriber
from docflow_shared.retries import Origin, Parking
from docflow_status.entrypoints.metrics import ProjectionMetrics
from docflow_status.handlers import ReadModel, project_events

logger = logging.getLogger(__name__)

GROUP_ID = "docflow-status"

# Events applied in one transaction at most. Larger batches project faster
# (bench/status_projection.py) but hold the event loop longer, which the
# status API's readers feel.
MAX_BATCH = 500


def register(
    broker: KafkaBroker,
    *,
    read_model: ReadModel,
    announce: Publish,
    metrics: ProjectionMetrics | None = None,
    parking: Parking | None = None,
) -> None:
    """Subscribe the projector to every ``docflow.document.*`` and ``docflow.reindex.*``
    topic."""

    @batch_subscriber(
        broker, *topics.ALL, *topics.REINDEX, group_id=GROUP_ID, max_records=MAX_BATCH
    )
    async def on_document_events(message: KafkaMessage) -> None:
        """Project what one poll returned into the read model, then announce it."""
        records = message.raw_message if isinstance(message.raw_message, tuple) else ()
        events: list[Event] = []
        reindexes: list[ReindexEvent] = []
        for n, body in enumerate(message.body):
            try:
                event = parse_any(body)
            except ValidationError as exc:
                # Redelivering a message that can never be read would block the
                # partition; it goes to the dead-letter topic (or is skipped), loudly.
                record = records[n] if n < len(records) else None
                logger.error(
                    "unreadable message %s[%s]@%s: %s",
                    getattr(record, "topic", "?"),
                    getattr(record, "partition", "?"),
                    getattr(record, "offset", "?"),
                    exc,
                )
                if parking is not None:
                    origin = Origin.of_record(record) if record is not None else None
                    await parking.dead_letter(
                        body, origin, f"unreadable message: {exc}"[:500], "status"
                    )
                continue
            if isinstance(event, Event):
                events.append(event)
            else:
                reindexes.append(event)
        # A database or Kafka error propagates: nothing of the batch is
        # committed and it comes back.
        await project_events(
            events,
            read_model=read_model,
            announce=announce,
            finished=metrics.observe_finished if metrics is not None else None,
        )
        await read_model.apply_reindexes(reindexes)
