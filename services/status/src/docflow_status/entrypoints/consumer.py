"""The status service's subscriber: every document topic into the read model."""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import ValidationError

from docflow_shared import topics
from docflow_shared.events import parse_event
from docflow_shared.messaging import subscriber
from docflow_status.handlers import ReadModel, project_event

logger = logging.getLogger(__name__)

GROUP_ID = "docflow-status"


def register(broker: KafkaBroker, *, read_model: ReadModel) -> None:
    """Subscribe the projector to every ``docflow.document.*`` topic."""

    @subscriber(broker, *topics.ALL, group_id=GROUP_ID)
    async def on_document_event(message: KafkaMessage) -> None:
        """Project any document event into the read model."""
        try:
            event = parse_event(message.body)
        except ValidationError as exc:
            # Redelivering a message that can never be read would block the
            # partition; it is skipped, loudly.
            record = message.raw_message
            logger.error(
                "skipping unreadable message %s[%s]@%s: %s",
                getattr(record, "topic", "?"),
                getattr(record, "partition", "?"),
                getattr(record, "offset", "?"),
                exc,
            )
            return
        # A database error propagates: the offset is not committed and the
        # event comes back.
        await project_event(event, read_model=read_model)
