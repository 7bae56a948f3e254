"""The webhook dispatcher's work: a status change → a signed delivery to each
endpoint that wants it, retried through the retry topics, kept on the
dead-letter topic when it gives up (docs/events.md, "Webhooks").

At least once: the status record is committed only after each of its
deliveries was answered 2xx, parked for a retry, or given up on (and recorded).
A delivery's id is the same whenever the event is read again, so a receiver
deduplicates on ``webhook-id``, and a delivery already answered 2xx is not
sent again (its row says so) unless a re-drive asks for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import ValidationError

from docflow_gateway.adapters.egress import Answer
from docflow_gateway.adapters.webhook_store import DeliveryState, Target, WebhookStore
from docflow_gateway.domain.webhooks import Delivery, kind_of, wanted
from docflow_shared import decoding
from docflow_shared.events import DocumentStatusChanged
from docflow_shared.logthrottle import throttled
from docflow_shared.retries import Origin, Parking

logger = throttled(logging.getLogger(__name__))

# The retry topics' service name (docflow.retry.webhooks.<n>.v1) and the stage
# named in parked and dead-lettered messages' headers.
SERVICE = "webhooks"
STAGE = "webhook"

Send = Callable[[str, str, str, str], Awaitable[Answer]]
"""(url, secret, webhook id, body) → the endpoint's answer (``WebhookSender.send``)."""


class WebhookMetrics:
    """Deliveries by outcome, and how long from the status change to a 2xx answer."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "docflow_webhook_deliveries",
            "Webhook delivery attempts by outcome "
            "(delivered, retrying, failed: out of retries, refused: a forbidden address)",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("delivered", "retrying", "failed", "refused"):
            self.deliveries.labels(outcome)
        self.latency = Histogram(
            "docflow_webhook_latency_seconds",
            "From the status change to the endpoint's 2xx answer",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
            registry=registry,
        )
        self.request = Histogram(
            "docflow_webhook_request_seconds",
            "One request to an endpoint, whatever its answer",
            registry=registry,
        )


class Dispatcher:
    """Sends status changes to the tenants' endpoints (``on_status``) and parked
    deliveries again when due (``on_parked``)."""

    def __init__(
        self,
        store: WebhookStore,
        send: Send,
        parking: Parking,
        metrics: WebhookMetrics,
    ) -> None:
        self._store = store
        self._send = send
        self._parking = parking
        self._metrics = metrics

    async def on_status(self, body: bytes, origin: Origin | None) -> None:
        """A record of the status topic: a delivery to each endpoint of its tenant
        that wants its kind and existed when it happened."""
        try:
            status = decoding.read(DocumentStatusChanged.model_validate_json, body)
        except (ValueError, ValidationError) as exc:
            # Only the status service writes the topic (ACLs); nothing to tell anyone.
            logger.error("skipping a status record it cannot read: %s", str(exc)[:300])
            return
        kind = kind_of(status)
        if kind is None:
            return
        targets = [
            t
            for t in await self._store.targets(status.tenant_id)
            if wanted(t.kinds, kind, t.created_at, status.occurred_at)
        ]
        await asyncio.gather(
            *(self._deliver(Delivery.of(status, kind, t.id), t, origin) for t in targets)
        )

    async def on_parked(self, body: bytes, origin: Origin | None) -> None:
        """A delivery back from a retry topic (or a re-drive): sent again."""
        try:
            delivery = decoding.read(Delivery.model_validate_json, body)
        except (ValueError, ValidationError) as exc:
            if origin is not None:
                await self._parking.dead_letter(
                    body, origin, f"unreadable delivery: {str(exc)[:300]}", STAGE
                )
            return
        target = await self._store.target(delivery.tenant_id, delivery.endpoint_id)
        if target is None:
            return  # the endpoint was deleted meanwhile
        await self._deliver(delivery, target, origin)

    async def _deliver(self, delivery: Delivery, target: Target, origin: Origin | None) -> None:
        state = await self._store.state(delivery.delivery_id)
        if state == DeliveryState.DELIVERED and not delivery.redrive:
            return  # the same event read again: delivered already
        answer = await self._send(target.url, target.secret, delivery.webhook_id, delivery.body)
        self._metrics.request.observe(answer.seconds)
        if answer.ok:
            await self._store.attempted(
                delivery, DeliveryState.DELIVERED, answer.status, answer.excerpt
            )
            self._metrics.deliveries.labels("delivered").inc()
            latency = (datetime.now(UTC) - delivery.occurred_at).total_seconds()
            self._metrics.latency.observe(max(latency, 0.0))
            return
        reason = answer.describe()
        retries = origin.retries if origin is not None else 0
        parked = delivery.model_copy(update={"redrive": False}).model_dump_json().encode()
        if answer.refused or origin is None or retries >= self._parking.max_retries:
            state = DeliveryState.REFUSED if answer.refused else DeliveryState.FAILED
            if origin is not None:
                await self._parking.dead_letter(parked, origin, reason, STAGE)
            await self._store.attempted(delivery, state, answer.status, answer.excerpt)
            self._metrics.deliveries.labels(state).inc()
            logger.warning(
                "webhook %s to endpoint %s gave up after %s retries: %s",
                delivery.webhook_id,
                delivery.endpoint_id,
                retries,
                reason,
            )
            return
        due = await self._parking.retry(parked, origin, reason, STAGE)
        await self._store.attempted(delivery, DeliveryState.RETRYING, answer.status, answer.excerpt)
        self._metrics.deliveries.labels("retrying").inc()
        logger.info(
            "webhook %s to endpoint %s: %s; retry %s at %s",
            delivery.webhook_id,
            delivery.endpoint_id,
            reason,
            retries + 1,
            due.isoformat(timespec="seconds"),
        )
