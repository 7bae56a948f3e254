"""Kafka for every docflow service: one broker factory with safe delivery.

Delivery guarantee (docs/architecture.md, "Delivery semantics"): at-least-once with
idempotent effects.

* Producers: ``acks="all"`` and idempotence on, and every publish waits for
  the acknowledgement, so an event a service reports as sent is on every
  in-sync replica and retries never write it twice.
* Consumers: offsets are committed only after the handler returned, that is
  after its effects (Qdrant upsert, SQL commit, published events) are durable
  (``AckPolicy.NACK_ON_ERROR``: no auto-commit; an exception seeks back so the
  message is delivered again). New consumer groups start at the earliest
  offset, so nothing published before a service first started is skipped.
* A handler error does not block the partition: ``FailDocumentOnError``
  (``failures.py``) turns it into a ``DocumentFailed`` event with a reason,
  or, for a transient error, parks the message on a retry topic
  (``retries.py``); then the message is committed. Only when even that
  cannot be published is the message left uncommitted, to be delivered again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware

from docflow_shared import decoding
from docflow_shared.events import Envelope, Event
from docflow_shared.kafka_errors import explained
from docflow_shared.kafka_security import KafkaSecurity
from docflow_shared.logthrottle import throttled
from docflow_shared.telemetry import LogContext, tracer_provider

if TYPE_CHECKING:
    from faststream.kafka.publisher.usecase import DefaultPublisher
    from faststream.kafka.subscriber.usecase import BatchSubscriber, DefaultSubscriber
    from prometheus_client import CollectorRegistry

logger = logging.getLogger(__name__)

PartitionCounts = Callable[[str], Awaitable[int | None]]
"""How many partitions a topic has (None: not known now); ``kafka_admin.PartitionCounts``."""

Publish = Callable[[Event], Awaitable[None]]
"""The port handlers publish through: returns once Kafka acknowledged the event."""

PublishAny = Callable[[Envelope], Awaitable[None]]
"""The same port for any event, operation events (``ReindexRequested`` …) included."""

# Long enough for the slowest single message (a large PDF is one message to
# the extractor): past it Kafka considers the consumer dead and rebalances.
DEFAULT_MAX_POLL_INTERVAL_MS = 15 * 60 * 1000


class _Broker(KafkaBroker):
    """FastStream's ``KafkaBroker`` whose failure to connect says why
    (``kafka_errors.explained``) instead of only "Unable to bootstrap"."""

    explain_as: tuple[str, KafkaSecurity | None] = ("", None)

    async def connect(self) -> Any:
        async with explained(*self.explain_as):
            return await super().connect()

    async def start(self) -> None:
        # The subscribers' consumers bootstrap here, after connect().
        async with explained(*self.explain_as):
            await super().start()


def make_broker(
    bootstrap_servers: str,
    *,
    service: str,
    registry: CollectorRegistry | None = None,
    graceful_timeout: float = 30.0,
    request_timeout_ms: int = 40_000,
    idempotent: bool = True,
    security: KafkaSecurity | None = None,
) -> KafkaBroker:
    """A broker with docflow's producer guarantees and consume/publish metrics.

    ``idempotent=False`` is for a producer that must give up after
    ``request_timeout_ms`` (the gateway answering 503): an idempotent aiokafka
    producer never expires a batch, so a message a client was told was refused
    would still be delivered once Kafka is back. Without idempotence a retry
    may write an event twice; consumers ignore repeated ``event_id``s.

    ``security`` (TLS, SASL; ``kafka_security.py``) applies to every producer
    and consumer of the broker; None is plaintext. A broker that cannot
    connect raises ``kafka_errors.KafkaStartError`` naming the reason.
    """
    # Outermost first: the consume span, then the log context inside it (so log
    # records carry its trace id), then the metrics.
    middlewares: list[Any] = [
        KafkaTelemetryMiddleware(tracer_provider=tracer_provider(service)),
        LogContext,
    ]
    if registry is not None:
        middlewares.append(
            KafkaPrometheusMiddleware(registry=registry, app_name=f"docflow-{service}")
        )
    broker = _Broker(
        bootstrap_servers,
        client_id=f"docflow-{service}",
        security=security.faststream_security() if security else None,
        acks="all",
        enable_idempotence=idempotent,
        # Topics are declared (topics.py, Strimzi in production), never created
        # as a side effect of a typo in a subscriber.
        allow_auto_create_topics=False,
        middlewares=middlewares,
        # FastStream's records go through the service's own logging set-up;
        # its per-message "Received/Processed" lines only at DEBUG.
        # A failing message's traceback at each redelivery: a few, then counted.
        logger=throttled(logging.getLogger(f"docflow.{service}.kafka")),
        log_level=logging.DEBUG,
        # Any bytes and headers are read without raising outside the failure
        # middleware (decoding.py): FastStream's own json.loads does not.
        parser=decoding.parse,
        decoder=decoding.decode,
        # On shutdown, in-flight handlers get this long to finish (their
        # messages are committed) before the consumer leaves without committing.
        graceful_timeout=graceful_timeout,
        # Bounds how long a publish waits for an acknowledgement (and how long
        # an unsent message may wait in the producer before it is dropped).
        request_timeout_ms=request_timeout_ms,
    )
    broker.explain_as = (bootstrap_servers, security)
    return broker


def subscriber(
    broker: KafkaBroker | KafkaRouter,
    *topics: str,
    group_id: str,
    max_poll_interval_ms: int = DEFAULT_MAX_POLL_INTERVAL_MS,
) -> DefaultSubscriber:
    """Subscribe a consumer group to topics with docflow's delivery guarantee."""
    return broker.subscriber(
        *topics,
        group_id=group_id,
        auto_offset_reset="earliest",
        # Commit after the handler's effects are durable; redeliver on error.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_poll_interval_ms=max_poll_interval_ms,
    )


def batch_subscriber(
    broker: KafkaBroker | KafkaRouter,
    *topics: str,
    group_id: str,
    max_records: int,
    max_poll_interval_ms: int = DEFAULT_MAX_POLL_INTERVAL_MS,
) -> BatchSubscriber:
    """Like ``subscriber``, for a handler that takes what one poll returned (up to
    ``max_records`` messages, from any of its partitions) at once.

    The batch is committed after the handler returned; if it raises, every
    partition in the batch is rewound to its first message in it.
    """
    return broker.subscriber(
        *topics,
        group_id=group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_poll_interval_ms=max_poll_interval_ms,
        batch=True,
        max_records=max_records,
        # A poll returns as soon as anything is there; this bounds the wait when nothing is.
        batch_timeout_ms=200,
    )


def cloudevent_headers(event: Envelope, source: str) -> dict[str, str]:
    """CloudEvents binary-mode Kafka headers, so outside consumers need none of our code."""
    return {
        "ce_specversion": "1.0",
        "ce_id": str(event.event_id),
        "ce_type": event.event_type,
        "ce_source": source,
        "ce_time": event.occurred_at.isoformat(),
        "ce_subject": str(event.subject),
        # An extension attribute: the request that caused it (X-Correlation-ID).
        "ce_correlationid": event.correlation_id,
        "content-type": "application/json",
    }


class KafkaEventPublisher:
    """Publishes events to their topic, keyed by subject (the document, or the
    operation), acknowledged by Kafka.

    A service declares the events it produces; they appear as publishers in
    its AsyncAPI document, and publishing anything else is a programming error.
    """

    def __init__(
        self,
        broker: KafkaBroker,
        *,
        source: str,
        produces: Iterable[type[Envelope]],
        partition_counts: PartitionCounts | None = None,
    ) -> None:
        # For events that choose their partition (``Envelope.kafka_partition``);
        # without it (or while the count is not known) the key's hash decides.
        self._partition_counts = partition_counts
        self._source = source
        self._publishers: dict[type[Envelope], DefaultPublisher] = {
            cls: broker.publisher(
                cls.TOPIC, title=f"{cls.TOPIC}:{cls.__name__}", schema=cls, description=cls.__doc__
            )
            for cls in produces
        }

    async def __call__(self, event: Envelope) -> None:
        publisher = self._publishers.get(type(event))
        if publisher is None:
            raise TypeError(f"{self._source} does not declare {type(event).__name__} as produced")
        partition = None
        if self._partition_counts is not None and (
            type(event).kafka_partition is not Envelope.kafka_partition
        ):
            count = await self._partition_counts(event.TOPIC)
            partition = event.kafka_partition(count) if count else None
        await publisher.publish(
            event,
            # Keyed by subject: one document's (one operation's) events stay in
            # order; on the compacted command topics by tenant and document.
            key=event.kafka_key,
            partition=partition,
            headers=cloudevent_headers(event, self._source),
            correlation_id=event.correlation_id,
        )
