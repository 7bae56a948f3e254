"""What a consumer does when handling a message raised: the document fails, the
message is parked for a retry or dead-lettered, and the partition goes on.

``FailDocumentOnError`` is the consumer middleware every document subscriber
runs under (``FailDocumentOnError(...).router()``); a handler of batches asks
it about each message of the batch on its own (``fail_body``, through
``batches.py``). Where parked messages wait and come back: ``retries.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from faststream import BaseMiddleware
from faststream.kafka import KafkaRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from docflow_shared import decoding
from docflow_shared.errors import DocumentError, UntrustedEvent
from docflow_shared.events import DocumentFailed, DocumentRetrying, ErrorCode, ErrorInfo, Stage
from docflow_shared.events.envelope import MAX_CORRELATION_ID_CHARS, MAX_INT32, TenantId
from docflow_shared.logthrottle import throttled
from docflow_shared.messaging import Publish
from docflow_shared.metrics import RejectedEvents
from docflow_shared.retries import Origin, Parking, is_transient

if TYPE_CHECKING:
    from faststream._internal.context.repository import ContextRepo
    from faststream.message import StreamMessage

# A failure that repeats (redeliveries, an outage) is logged a few times, then counted.
logger = throttled(logging.getLogger(__name__))


class _Envelope(BaseModel):
    """Just enough of any event to say which document it was about."""

    model_config = ConfigDict(extra="ignore")

    # Bounded as in the events: an envelope read here must make a valid DocumentFailed.
    event_type: str = Field(default="", max_length=100)
    document_id: UUID
    tenant_id: TenantId
    correlation_id: str = Field(max_length=MAX_CORRELATION_ID_CHARS)
    attempt: int = Field(default=1, ge=1, le=MAX_INT32)

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
    # Any bytes: too large, too deeply nested or not JSON is None (decoding.py).
    try:
        return decoding.read(_Envelope.model_validate_json, body)
    except ValueError:
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
    * ``UntrustedEvent`` (its tenant, document and blob key do not belong
      together: forged): dead-lettered and counted in ``rejected``, and *no*
      ``DocumentFailed``: the document it names may be another tenant's.
    """

    def __init__(
        self,
        publish: Publish,
        *,
        stage: Stage,
        service: str,
        parking: Parking | None = None,
        transient: Callable[[BaseException], bool] = is_transient,
        rejected: RejectedEvents | None = None,
    ) -> None:
        self._publish = publish
        self._rejected = rejected
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
        the message was parked for a retry.

        If acting raises too, so does this: the message is not committed and comes
        again. Once it has come back ``DOCFLOW_MAX_REDELIVERIES`` times (and the
        error is not an outage, which is waited out) it goes to the dead-letter
        topic as it is.
        """
        if isinstance(exc, UntrustedEvent):
            # Forged: kept and counted, never retried, and it fails no document
            # (the one it names may be another tenant's).
            await self.reject(body, exc, origin)
            return True
        try:
            ended = await self._act(body, exc, origin)
        except Exception as failing:
            if (
                self._parking is None
                or origin is None
                or self._transient(failing)
                or not self._parking.redeliveries.exhausted(origin)
            ):
                raise
            reason = f"failing it raised {_reason(failing)}; first {_reason(exc)}"
            await self._parking.dead_letter(
                body, origin, reason[:_MAX_REASON_CHARS], self._stage.value
            )
            ended = True
        if self._parking is not None:
            self._parking.redeliveries.forget(origin)
        return ended

    async def _act(self, body: bytes, exc: Exception, origin: Origin | None) -> bool:
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

    async def reject(self, body: bytes, exc: UntrustedEvent, origin: Origin | None) -> None:
        """Keep a forged event on the dead-letter topic (for whoever investigates) and
        count it; nothing else: it is not retried and fails no document."""
        if self._rejected is not None:
            self._rejected.count(exc.reason)
        logger.error("%s: rejected an untrusted event: %s", self._service, exc.message)
        if self._parking is not None:
            await self._parking.dead_letter(
                body, origin, f"untrusted event: {exc.message}", self._stage.value
            )

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
