"""Each service scenario runs twice: on FastStream's in-memory TestKafkaBroker
and, with ``with_real=True``, on the real broker (marked integration)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from faststream.kafka import KafkaBroker, KafkaMessage

from docflow_shared.events import (
    DocumentStatusChanged,
    Event,
    OcrRangeRead,
    OcrRangeRequested,
    parse_event,
)
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.topics import OCR_DONE, OCR_REQUESTED, STATUS, specs


@pytest.fixture(
    params=[
        pytest.param(False, id="memory"),
        pytest.param(True, id="kafka", marks=pytest.mark.integration),
    ]
)
def real_kafka(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Bootstrap servers when the scenario runs on the real broker, else None."""
    if not request.param:
        yield None
        return
    bootstrap: str = request.getfixturevalue("kafka_bootstrap")
    asyncio.run(ensure_topics(bootstrap, specs()))
    yield bootstrap


class Collector:
    """Subscribes a throwaway group to topics and keeps the events of one document."""

    def __init__(self, broker: KafkaBroker, *topics: str, group_id: str) -> None:
        self.events: list[Event] = []
        self.document_ids: set = set()

        @broker.subscriber(*topics, group_id=group_id, auto_offset_reset="earliest")
        async def collect(message: KafkaMessage) -> None:
            topic = message.raw_message.topic
            event = (
                DocumentStatusChanged.model_validate_json(message.body)
                if topic == STATUS
                else OcrRangeRequested.model_validate_json(message.body)
                if topic == OCR_REQUESTED
                else OcrRangeRead.model_validate_json(message.body)
                if topic == OCR_DONE
                else parse_event(message.body)
            )
            if event.document_id in self.document_ids:
                self.events.append(event)

    def of(self, kind: type[Event]) -> list:
        return [e for e in self.events if isinstance(e, kind)]
