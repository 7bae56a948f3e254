"""Transient errors and unreadable messages: retry topics, then the dead-letter topic.

A handler that meets a transient error (a dependency unavailable) must not
hold its partition while the dependency recovers, and must not give up at
once either. The consumer middleware (``failures.FailDocumentOnError``)
parks the message on the service's retry topic of the next level, with
headers saying where it came from, how many retries it had and when it is
due; the service's retry subscriber (``register_retries``) waits until then
and hands it to the same handler. After the last level the message goes to
the dead-letter topic and the document fails with the error, so nothing is
stuck. Messages nobody can read go to the dead-letter topic at once.

Headers on a parked or dead-lettered message (the original ones are kept):

``docflow-original-topic``, ``-partition``, ``-offset``
    where the message was first read;
``docflow-retries``
    retries it has had (0 on a message dead-lettered at first reading);
``docflow-due-ms``
    when the next retry is due (epoch milliseconds; retry topics only);
``docflow-error``, ``docflow-stage``, ``docflow-service``, ``docflow-failed-at``
    what went wrong last, where, and when.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError
from faststream.kafka import KafkaBroker, KafkaMessage, KafkaRouter

from docflow_shared import topics
from docflow_shared.errors import TransientError
from docflow_shared.logthrottle import throttled
from docflow_shared.messaging import subscriber
from docflow_shared.metrics import RetryMetrics
from docflow_shared.redeliveries import DEFAULT_MAX_REDELIVERIES, Redeliveries

if TYPE_CHECKING:
    from faststream.kafka.publisher.usecase import DefaultPublisher

# A failure that repeats (redeliveries, an outage) is logged a few times, then counted.
logger = throttled(logging.getLogger(__name__))

ORIGINAL_TOPIC = "docflow-original-topic"
ORIGINAL_PARTITION = "docflow-original-partition"
ORIGINAL_OFFSET = "docflow-original-offset"
RETRIES = "docflow-retries"
DUE_MS = "docflow-due-ms"
ERROR = "docflow-error"
STAGE = "docflow-stage"
SERVICE = "docflow-service"
FAILED_AT = "docflow-failed-at"
TRUNCATED = "docflow-truncated"

# Kafka refuses a message over its limit (1 MiB by default), and a dead letter
# that cannot be published brings its message back forever: a body is kept up
# to this size (``docflow-truncated`` then gives its length), the original
# headers up to this total (dropped past it).
MAX_KEPT_BODY_BYTES = 900 * 1024
MAX_KEPT_HEADER_BYTES = 16 * 1024

# The default delays before the 1st, 2nd and 3rd retry (DOCFLOW_RETRY_DELAYS_S).
DEFAULT_DELAYS_S: tuple[float, ...] = (5.0, 30.0, 120.0)


def is_transient(exc: BaseException) -> bool:
    """Errors that say a dependency is unavailable, not that the message is bad."""
    return isinstance(
        exc,
        TransientError
        | ConnectionError
        | TimeoutError
        | KafkaConnectionError
        | KafkaTimeoutError
        | NodeNotReadyError,
    )


@dataclass(frozen=True)
class Origin:
    """Where a message was read from, and what its headers say of earlier failures."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def retries(self) -> int:
        """Retries the message had; 0 when the header is missing or not a number
        (anyone can publish a message with any headers)."""
        return header_int(self.headers, RETRIES, 0, high=topics.RETRY_LEVELS)

    @property
    def first_topic(self) -> str:
        """The topic the message was published to by its producer."""
        return self.headers.get(ORIGINAL_TOPIC, self.topic)

    @classmethod
    def of_record(cls, record: Any) -> Origin:
        """From an aiokafka ``ConsumerRecord``."""
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            headers={
                str(k): (v or b"").decode(errors="replace") for k, v in (record.headers or ())
            },
        )

    @classmethod
    def of_message(cls, message: Any) -> Origin | None:
        """From a FastStream message of one record (None for a batch, or a test double)."""
        record = getattr(message, "raw_message", None)
        if record is None or isinstance(record, tuple) or not hasattr(record, "topic"):
            return None
        return cls.of_record(record)


class Parking:
    """Where one service parks messages: its retry topics and the dead-letter topic."""

    def __init__(
        self,
        broker: KafkaBroker | KafkaRouter,
        *,
        service: str,
        delays_s: Sequence[float] = DEFAULT_DELAYS_S,
        metrics: RetryMetrics | None = None,
        max_redeliveries: int = DEFAULT_MAX_REDELIVERIES,
    ) -> None:
        if len(delays_s) > topics.RETRY_LEVELS:
            raise ValueError(f"at most {topics.RETRY_LEVELS} retry delays, got {len(delays_s)}")
        self.service = service
        self.delays_s = tuple(delays_s)
        self._metrics = metrics
        # Messages whose failure could not even be dealt with (failures.py, batches.py).
        self.redeliveries = Redeliveries(max_redeliveries)
        self._retry: list[DefaultPublisher] = [
            broker.publisher(
                topics.retry_topic(service, level),
                title=f"{topics.retry_topic(service, level)}:parked",
                description=f"{service}: messages waiting for retry {level + 1} "
                f"(after {delays_s[level]:g} s); the original body and headers",
            )
            for level in range(len(delays_s))
        ]
        self._dead: DefaultPublisher = broker.publisher(
            topics.DEAD_LETTER,
            title=f"{topics.DEAD_LETTER}:{service}",
            description="Messages that could not be handled: the original body and headers, "
            "with docflow-* headers saying why",
        )

    @property
    def max_retries(self) -> int:
        return len(self.delays_s)

    async def retry(self, body: bytes, origin: Origin, reason: str, stage: str) -> datetime:
        """Park ``body`` for its next retry; returns when it is due."""
        level = origin.retries
        due = time.time() + self.delays_s[level]
        headers = self._headers(origin, reason, stage, retries=level + 1)
        headers[DUE_MS] = str(int(due * 1000))
        await self._retry[level].publish(body, key=origin.key, headers=headers)
        if self._metrics is not None:
            self._metrics.retries.labels(stage).inc()
        return datetime.fromtimestamp(due, UTC)

    async def dead_letter(
        self, body: bytes, origin: Origin | None, reason: str, stage: str
    ) -> None:
        """Keep ``body`` on the dead-letter topic with why it could not be handled."""
        origin = origin or Origin(topic="?", partition=-1, offset=-1, key=None)
        headers = self._headers(origin, reason, stage, retries=origin.retries)
        headers.pop(DUE_MS, None)
        if len(body) > MAX_KEPT_BODY_BYTES:
            headers[TRUNCATED] = str(len(body))
            body = body[:MAX_KEPT_BODY_BYTES]
        await self._dead.publish(body, key=origin.key, headers=headers)
        if self._metrics is not None:
            self._metrics.dead_letters.labels(stage).inc()
        logger.warning(
            "%s: dead-lettered a message of %s[%s]@%s after %s retries: %s",
            self.service,
            origin.first_topic,
            headers[ORIGINAL_PARTITION],
            headers[ORIGINAL_OFFSET],
            origin.retries,
            reason,
        )

    def _headers(self, origin: Origin, reason: str, stage: str, *, retries: int) -> dict[str, str]:
        first = ORIGINAL_TOPIC not in origin.headers
        size = sum(len(k) + len(v) for k, v in origin.headers.items())
        return {
            **(origin.headers if size <= MAX_KEPT_HEADER_BYTES else {}),
            ORIGINAL_TOPIC: origin.first_topic,
            ORIGINAL_PARTITION: str(origin.partition)
            if first
            else origin.headers.get(ORIGINAL_PARTITION, "?"),
            ORIGINAL_OFFSET: str(origin.offset)
            if first
            else origin.headers.get(ORIGINAL_OFFSET, "?"),
            RETRIES: str(retries),
            ERROR: reason,
            STAGE: stage,
            SERVICE: self.service,
            FAILED_AT: datetime.now(UTC).isoformat(),
        }


Handler = Callable[[bytes], Awaitable[None]]


def header_int(headers: Mapping[str, str], name: str, default: int, *, high: int) -> int:
    """The header ``name`` as a whole number from 0 to ``high``; ``default`` when it is
    missing or not one (a header's value is whatever its publisher wrote)."""
    value = headers.get(name, "")
    if not (0 < len(value) <= 20 and value.isascii() and value.isdigit()):
        return default
    return min(int(value), high)


def register_retries(
    router: KafkaRouter,
    *,
    parking: Parking,
    group_id: str,
    handlers: Mapping[str, Handler],
) -> None:
    """Subscribe the service to its retry topics: each parked message is handed, when
    due, to the handler of the topic it was first read from.

    The router's middleware treats a failure here like one on the original
    topic, with the retries the headers count: the next level, or the end.
    """

    async def on_parked(message: KafkaMessage) -> None:
        """Hand a parked message, when due, to its topic's handler."""
        headers = message.headers
        # Due now when the header is missing or garbage; never later than the
        # longest delay (a message due in a year would hold its partition).
        due_ms = header_int(headers, DUE_MS, 0, high=2**63)
        wait_s = min(due_ms / 1000 - time.time(), max(parking.delays_s, default=0.0))
        if wait_s > 0:
            # Messages of one level are due in the order they were parked.
            await asyncio.sleep(wait_s)
        handler = handlers.get(headers.get(ORIGINAL_TOPIC, ""))
        if handler is None:
            raise RuntimeError(
                f"the {parking.service} has no handler for {headers.get(ORIGINAL_TOPIC)!r}"
            )
        await handler(message.body)

    # One consumer per level: a message waiting two minutes at the last level
    # must not hold back one due in five seconds at the first.
    for level in range(parking.max_retries):
        subscriber(
            router,
            topics.retry_topic(parking.service, level),
            group_id=retry_group(group_id, level),
        )(on_parked)


def retry_group(group_id: str, level: int) -> str:
    """The consumer group reading a service's retry topic of ``level``."""
    return f"{group_id}-retry-{level}"
