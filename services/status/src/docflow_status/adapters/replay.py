"""Reading the event topics from a given position to their current end, in batches.

No consumer group: a replay commits nothing and disturbs no running service.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from docflow_shared.events import Event, ReindexEvent, parse_any
from docflow_shared.kafka_admin import partitions_of
from docflow_shared.kafka_security import KafkaSecurity, client_kwargs

logger = logging.getLogger(__name__)

Positions = dict[TopicPartition, int]


@dataclass
class Replayed:
    """What a replay read."""

    # Where each partition was left: the next offset to read.
    positions: Positions = field(default_factory=dict)
    events: int = 0
    unreadable: int = 0


async def replay(
    bootstrap_servers: str,
    topics: Sequence[str],
    apply: Callable[[list[Event | ReindexEvent]], Awaitable[object]],
    *,
    start: Positions | None = None,
    batch: int = 500,
    security: KafkaSecurity | None = None,
) -> Replayed:
    """Feed ``apply`` the events of ``topics`` from ``start`` (else offset 0) to the end
    each partition had when the replay began, in batches of up to ``batch``."""
    partitions = await partitions_of(bootstrap_servers, topics, security=security)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        **client_kwargs(security),
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        begin = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, (start or {}).get(tp, begin[tp]))
        ends = await consumer.end_offsets(partitions)
        done = Replayed()
        while True:
            left = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
            if not left:
                break
            polled = await consumer.getmany(*left, timeout_ms=1000, max_records=batch)
            events: list[Event | ReindexEvent] = []
            for records in polled.values():
                for record in records:
                    try:
                        events.append(parse_any(record.value or b""))
                    except ValidationError:
                        done.unreadable += 1
                        logger.warning(
                            "replay: skipping unreadable message %s[%s]@%s",
                            record.topic,
                            record.partition,
                            record.offset,
                        )
            if events:
                await apply(events)
                done.events += len(events)
        done.positions = {tp: await consumer.position(tp) for tp in partitions}
        return done
    finally:
        await consumer.stop()
