"""The webhook dispatcher's work: a status change → a signed delivery to each
endpoint that wants it, retried through the retry topics, kept on the
dead-letter topic when it gives up (docs/events.md, "Webhooks").

At least once: the status records of a poll are committed only after each of
their deliveries was answered 2xx, parked for a retry, or given up on (and
recorded). A delivery's id is the same whenever the event is read again, so a
receiver deduplicates on ``webhook-id``, and a delivery already answered 2xx
is not sent again (its row says so) unless a re-drive asks for it.

Throughput (``on_batch``): the records of one poll are handled concurrently,
one document's in the order they were read (the status topic is keyed by
document, so they come in the order the status service published them), at
most ``DOCFLOW_WEBHOOK_CONCURRENCY`` deliveries at once. A first attempt waits
at most ``DOCFLOW_WEBHOOK_FIRST_ATTEMPT_TIMEOUT_S`` for its answer; a slower
endpoint is retried off the status topic (with the whole
``DOCFLOW_WEBHOOK_TIMEOUT_S``), so it holds a poll that long at most. The
tenants' endpoints come from ``EndpointCache``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import ValidationError

from docflow_gateway.adapters.egress import Answer
from docflow_gateway.adapters.webhook_store import DeliveryState, Target, WebhookStore
from docflow_gateway.domain.webhooks import Delivery, kind_of, wanted
from docflow_shared import decoding
from docflow_shared.batches import Item
from docflow_shared.events import DocumentStatusChanged
from docflow_shared.logthrottle import throttled
from docflow_shared.retries import Origin, Parking

logger = throttled(logging.getLogger(__name__))

# The retry topics' service name (docflow.retry.webhooks.<n>.v1) and the stage
# named in parked and dead-lettered messages' headers.
SERVICE = "webhooks"
STAGE = "webhook"


class Send(Protocol):
    """(url, secrets, webhook id, body) → the endpoint's answer (``WebhookSender.send``),
    signed with each secret, waiting at most ``timeout_s`` (the sender's own when None)."""

    async def __call__(
        self,
        url: str,
        secrets: Sequence[str],
        webhook_id: str,
        body: str,
        *,
        timeout_s: float | None = None,
    ) -> Answer: ...


# An event is served from the cache only if it happened this long before the
# cache was filled: an endpoint made just before the event (by the gateway's
# clock) must not be missed because the dispatcher's clock is a bit behind.
CLOCK_SKEW = timedelta(seconds=2)
# Tenants whose endpoints are kept at most (then the cache starts again).
MAX_CACHED_TENANTS = 10_000
# How often the dispatcher prunes old delivery rows (a bounded number each time).
PRUNE_EVERY_S = 600.0


@dataclass(frozen=True)
class _Cached:
    fetched_at: datetime
    monotonic: float
    targets: list[Target]


class EndpointCache:
    """A tenant's endpoints as the dispatcher last read them, kept ``ttl_s`` seconds.

    An event is matched against cached endpoints only if it happened before
    they were read (less ``CLOCK_SKEW``): an endpoint registered later wanted
    no earlier event (``wanted``), so the cache never misses a new endpoint's
    first events. When the dispatcher keeps up, events are newer than any
    read, so the endpoints are read again, once per tenant and poll; the
    cache saves the reads when it is behind (a backlog, a replay). A deleted
    endpoint, or a rotated secret, is seen within ``ttl_s`` at most.
    """

    def __init__(self, store: WebhookStore, ttl_s: float) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._cached: dict[str, _Cached] = {}
        self.reads = 0

    async def of(self, tenant_id: str, latest: datetime) -> list[Target]:
        """The tenant's endpoints, fresh enough for events up to ``latest``."""
        found = self._cached.get(tenant_id)
        if (
            found is not None
            and time.monotonic() - found.monotonic < self._ttl_s
            and latest < found.fetched_at - CLOCK_SKEW
        ):
            return found.targets
        fetched_at, started = datetime.now(UTC), time.monotonic()
        targets = await self._store.targets(tenant_id)
        self.reads += 1
        if self._ttl_s > 0:
            if len(self._cached) >= MAX_CACHED_TENANTS:
                self._cached.clear()
            self._cached[tenant_id] = _Cached(fetched_at, started, targets)
        return targets


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


async def _settled(work: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run ``work`` concurrently until each is done; then raise the first error, if any
    (none is left running behind the caller's back: its message comes again)."""
    for outcome in await asyncio.gather(*work, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


class Dispatcher:
    """Sends status changes to the tenants' endpoints (``on_batch``, ``on_status``)
    and parked deliveries again when due (``on_parked``)."""

    def __init__(
        self,
        store: WebhookStore,
        send: Send,
        parking: Parking,
        metrics: WebhookMetrics,
        *,
        concurrency: int = 16,
        first_attempt_timeout_s: float | None = None,
        endpoints: EndpointCache | None = None,
        retention: timedelta | None = None,
    ) -> None:
        self._store = store
        self._send = send
        self._parking = parking
        self._metrics = metrics
        self._slots = asyncio.Semaphore(concurrency)
        self._first_timeout_s = first_attempt_timeout_s
        self.endpoints = endpoints or EndpointCache(store, 0)
        self._retention = retention
        self._pruned_at: float | None = None

    async def on_status(self, body: bytes, origin: Origin | None) -> None:
        """One record of the status topic (``on_batch`` of one)."""
        try:
            status = decoding.read(DocumentStatusChanged.model_validate_json, body)
        except (ValueError, ValidationError) as exc:
            # Only the status service writes the topic (ACLs); nothing to tell anyone.
            logger.error("skipping a status record it cannot read: %s", str(exc)[:300])
            return
        await self.on_batch([Item(body, status, origin)])

    async def on_batch(self, items: Sequence[Item[DocumentStatusChanged]]) -> None:
        """Records of the status topic: a delivery to each endpoint of their tenant that
        wants their kind and existed when it happened. Documents concurrently, each
        document's records in order; returns when every delivery is settled, and
        raises (the first error) only then."""
        latest: dict[str, datetime] = {}
        by_document: dict[tuple[str, UUID], list[Item[DocumentStatusChanged]]] = {}
        for item in items:
            tenant = item.event.tenant_id
            latest[tenant] = max(latest.get(tenant, item.event.occurred_at), item.event.occurred_at)
            by_document.setdefault((tenant, item.event.document_id), []).append(item)
        targets = {tenant: await self.endpoints.of(tenant, at) for tenant, at in latest.items()}
        await _settled(
            self._in_order(group, targets[tenant]) for (tenant, _), group in by_document.items()
        )
        await self.prune_if_due()

    async def prune_if_due(self) -> int:
        """Every ``PRUNE_EVERY_S`` (the first time at once): forget deliveries last
        attempted longer ago than the retention; how many were."""
        now = time.monotonic()
        if self._retention is None or (
            self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_S
        ):
            return 0
        self._pruned_at = now
        try:
            pruned = await self._store.prune(datetime.now(UTC) - self._retention)
        except Exception as exc:  # a failed prune must not hold the deliveries
            logger.warning("could not prune old webhook deliveries: %s", exc)
            return 0
        if pruned:
            logger.info("pruned %s webhook deliveries older than %s", pruned, self._retention)
        return pruned

    async def _in_order(
        self, items: list[Item[DocumentStatusChanged]], targets: list[Target]
    ) -> None:
        for item in items:
            kind = kind_of(item.event)
            if kind is None:
                continue
            await _settled(
                self._deliver(
                    Delivery.of(item.event, kind, t.id),
                    t,
                    item.origin,
                    timeout_s=self._first_timeout_s,
                )
                for t in targets
                if wanted(t.kinds, kind, t.created_at, item.event.occurred_at)
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

    async def _deliver(
        self,
        delivery: Delivery,
        target: Target,
        origin: Origin | None,
        *,
        timeout_s: float | None = None,
    ) -> None:
        async with self._slots:
            await self._attempt(delivery, target, origin, timeout_s)

    async def _attempt(
        self, delivery: Delivery, target: Target, origin: Origin | None, timeout_s: float | None
    ) -> None:
        state = await self._store.state(delivery.delivery_id)
        if state == DeliveryState.DELIVERED and not delivery.redrive:
            return  # the same event read again: delivered already
        answer = await self._send(
            target.url,
            target.signing_secrets(datetime.now(UTC)),
            delivery.webhook_id,
            delivery.body,
            timeout_s=timeout_s,
        )
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
