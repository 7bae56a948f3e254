"""Kafka for every docflow service: one broker factory with safe delivery.

Delivery guarantee (DESIGN.md, "Delivery semantics"): at-least-once with
idempotent effects.

* Producers: ``acks="all"`` and idempotence on, and every publish waits for
  the acknowledgement, so an event a service reports as sent is on every
  in-sync replica and retries never write it twice.
* Consumers: offsets are committed only after the handler returned, that is
  after its effects (Qdrant upsert, SQL commit, published events) are durable
  (``AckPolicy.NACK_ON_ERROR``: no auto-commit; an exception seeks back so the
  message is delivered again). New consumer groups start at the earliest
  offset, so nothing published before a service first started is skipped.
* A handler error does not block the partition: ``FailDocumentOnError`` turns
  it into a ``DocumentFailed`` event with a reason, or, for a transient error,
  parks the message on a retry topic (``retries.py``); then the message is
  committed. Only when even that cannot be published is the message left
  uncommitted, to be delivered again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from faststream import AckPolicy, BaseMiddleware
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from pydantic import BaseModel, ConfigDict, ValidationError

from docflow_shared.errors import DocumentError
from docflow_shared.events import (
    DocumentFailed,
    DocumentRetrying,
    Envelope,
    ErrorCode,
    ErrorInfo,
    Event,
    Stage,
)
from docflow_shared.retries import Origin, Parking, is_transient
from docflow_shared.telemetry import LogContext, tracer_provider

if TYPE_CHECKING:
    from faststream._internal.context.repository import ContextRepo
    from faststream.kafka.publisher.usecase import DefaultPublisher
    from faststream.kafka.subscriber.usecase import BatchSubscriber, DefaultSubscriber
    from faststream.message import StreamMessage
    from prometheus_client import CollectorRegistry

logger = logging.getLogger(__name__)

Publish = Callable[[Event], Awaitable[None]]
"""The port handlers publish through: returns once Kafka acknowledged the event."""

PublishAny = Callable[[Envelope], Awaitable[None]]
"""The same port for any event, operation events (``ReindexRequested`` …) included."""

# Long enough for the slowest single message (a large PDF is one message to
# the extractor): past it Kafka considers the consumer dead and rebalances.
DEFAULT_MAX_POLL_INTERVAL_MS = 15 * 60 * 1000


def make_broker(
    bootstrap_servers: str,
    *,
    service: str,
    registry: CollectorRegistry | None = None,
    graceful_timeout: float = 30.0,
    request_timeout_ms: int = 40_000,
    idempotent: bool = True,
) -> KafkaBroker:
    """A broker with docflow's producer guarantees and consume/publish metrics.

    ``idempotent=False`` is for a producer that must give up after
    ``request_timeout_ms`` (the gateway answering 503): an idempotent aiokafka
    producer never expires a batch, so a message a client was told was refused
    would still be delivered once Kafka is back. Without idempotence a retry
    may write an event twice; consumers ignore repeated ``event_id``s.
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
    return KafkaBroker(
        bootstrap_servers,
        client_id=f"docflow-{service}",
        acks="all",
        enable_idempotence=idempotent,
        # Topics are declared (topics.py, Strimzi in production), never created
        # as a side effect of a typo in a subscriber.
        allow_auto_create_topics=False,
        middlewares=middlewares,
        # FastStream's records go through the service's own logging set-up;
        # its per-message "Received/Processed" lines only at DEBUG.
        logger=logging.getLogger(f"docflow.{service}.kafka"),
        log_level=logging.DEBUG,
        # On shutdown, in-flight handlers get this long to finish (their
        # messages are committed) before the consumer leaves without committing.
        graceful_timeout=graceful_timeout,
        # Bounds how long a publish waits for an acknowledgement (and how long
        # an unsent message may wait in the producer before it is dropped).
        request_timeout_ms=request_timeout_ms,
    )


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
        self, broker: KafkaBroker, *, source: str, produces: Iterable[type[Envelope]]
    ) -> None:
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
        await publisher.publish(
            event,
            # Keyed by subject: one document's (one operation's) events stay in order.
            key=str(event.subject).encode(),
            headers=cloudevent_headers(event, self._source),
            correlation_id=event.correlation_id,
        )


class _Envelope(BaseModel):
    """Just enough of any event to say which document it was about."""

    model_config = ConfigDict(extra="ignore")

    event_type: str = ""
    document_id: UUID
    tenant_id: str
    correlation_id: str
    attempt: int = 1

    def ids(self) -> dict[str, Any]:
        """The fields an event about the same document attempt carries over."""
        return self.model_dump(include={"document_id", "tenant_id", "correlation_id", "attempt"})


# A failure reason is read by people in the status API; an exception's text
# can be huge (a validation error repeats the input, chunk texts included).
_MAX_REASON_CHARS = 500


def _reason(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _MAX_REASON_CHARS else text[: _MAX_REASON_CHARS - 1] + "…"


def _envelope_of(body: bytes) -> _Envelope | None:
    try:
        return _Envelope.model_validate(json.loads(body))
    except (ValueError, ValidationError):
        return None


class FailDocumentOnError:
    """Consumer middleware: a handler that raises fails its document, not the consumer.

    What happens depends on the error:

    * ``DocumentError`` (encrypted, corrupt, …): the document fails with its
      code and reason; the document's own fault, nothing to keep.
    * transient (``TransientError``, or what ``transient`` recognises: a
      dependency unavailable): with ``parking``, the message waits on a retry
      topic and the document says it is retrying (``DocumentRetrying``); after
      the last retry it goes to the dead-letter topic and the document fails,
      retryable.
    * anything else (a bug, an event it cannot read): the document fails as
      ``internal``, and the message goes to the dead-letter topic, to be
      re-driven once the cause is fixed.
    * a message that names no document (not JSON, no envelope): dead-lettered
      (logged and skipped without ``parking``); redelivering it would block
      the partition.
    """

    def __init__(
        self,
        publish: Publish,
        *,
        stage: Stage,
        service: str,
        parking: Parking | None = None,
        transient: Callable[[BaseException], bool] = is_transient,
    ) -> None:
        self._publish = publish
        self._stage = stage
        self._service = service
        self._parking = parking
        self._transient = transient

    def __call__(self, msg: Any, /, *, context: ContextRepo) -> BaseMiddleware:
        return _FailDocumentOnError(msg, context=context, owner=self)

    def router(self) -> KafkaRouter:
        """A router whose subscribers (and only those) this middleware wraps."""
        return KafkaRouter(middlewares=[self])

    async def fail(self, msg: StreamMessage[Any], exc: Exception) -> None:
        """Fail the document ``msg`` is about, because handling it raised ``exc``."""
        await self.fail_body(msg.body, exc, origin=Origin.of_message(msg))

    async def fail_body(self, body: bytes, exc: Exception, origin: Origin | None = None) -> bool:
        """Act on a message whose handling raised ``exc`` (``origin``: where it was read;
        a handler of batches passes each message's own). True when that was the end
        of it (the document failed, or the message was dead-lettered); False when
        the message was parked for a retry."""
        envelope = _envelope_of(body)
        if (
            envelope is None
            or envelope.event_type == DocumentFailed.model_fields["event_type"].default
        ):
            # Nothing to fail, or failing a failure (which could loop).
            reason = f"unreadable message: {_reason(exc)}"
            if self._parking is not None:
                await self._parking.dead_letter(body, origin, reason, self._stage.value)
            else:
                logger.error("%s: skipping a message it cannot act on (%s)", self._service, reason)
            return True
        retries = origin.retries if origin is not None else 0
        if self._transient(exc):
            if self._parking is not None and origin is not None:
                if retries < self._parking.max_retries:
                    await self._park(body, origin, envelope, exc)
                    return False
                await self._parking.dead_letter(body, origin, _reason(exc), self._stage.value)
            reason = exc.message if isinstance(exc, DocumentError) else _reason(exc)
            error = ErrorInfo(
                code=exc.code if isinstance(exc, DocumentError) else ErrorCode.INTERNAL,
                message=f"{reason} (gave up after {retries} retries)" if retries else reason,
                stage=self._stage,
                retryable=True,
            )
            logger.warning(
                "document %s failed after %s retries: %s", envelope.document_id, retries, reason
            )
        elif isinstance(exc, DocumentError):
            error = ErrorInfo(
                code=exc.code, message=exc.message, stage=self._stage, retryable=exc.retryable
            )
            logger.info("document %s failed: %s (%s)", envelope.document_id, exc.message, exc.code)
        elif isinstance(exc, ValidationError):
            error = ErrorInfo(
                code=ErrorCode.INTERNAL,
                message=f"the {self._service} could not read the event it received: {_reason(exc)}",
                stage=self._stage,
                retryable=False,
            )
            logger.error("document %s: unreadable event: %s", envelope.document_id, exc)
            if self._parking is not None:
                await self._parking.dead_letter(body, origin, _reason(exc), self._stage.value)
        else:
            error = ErrorInfo(
                code=ErrorCode.INTERNAL,
                message=f"unexpected error in the {self._service}: {_reason(exc)}",
                stage=self._stage,
                retryable=True,
            )
            logger.exception("document %s: unexpected error", envelope.document_id, exc_info=exc)
            if self._parking is not None:
                await self._parking.dead_letter(body, origin, _reason(exc), self._stage.value)
        # If this publish fails, the exception propagates: the message is not
        # committed and comes back, so the failure is never lost.
        await self._publish(DocumentFailed(**envelope.ids(), error=error))
        return True

    async def _park(self, body: bytes, origin: Origin, envelope: _Envelope, exc: Exception) -> None:
        if self._parking is None:
            raise RuntimeError("nowhere to park")
        reason = exc.message if isinstance(exc, DocumentError) else _reason(exc)
        due = await self._parking.retry(body, origin, reason, self._stage.value)
        logger.warning(
            "document %s: %s; retry %s of %s at %s",
            envelope.document_id,
            reason,
            origin.retries + 1,
            self._parking.max_retries,
            due.isoformat(timespec="seconds"),
        )
        await self._publish(
            DocumentRetrying(
                **envelope.ids(),
                stage=self._stage,
                retry=origin.retries + 1,
                retries=self._parking.max_retries,
                at=due,
                reason=reason,
            )
        )


class _FailDocumentOnError(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: ContextRepo, owner: FailDocumentOnError) -> None:
        super().__init__(msg, context=context)
        self._owner = owner

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        try:
            return await call_next(msg)
        except Exception as exc:
            await self._owner.fail(msg, exc)
            return None
