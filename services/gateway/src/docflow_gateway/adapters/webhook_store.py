"""Webhook endpoints and their deliveries, in the gateway's database.

Why there: the gateway owns the routes that register endpoints, its database
is already shared by its replicas (PostgreSQL) and backed up with the
documents, and so the secrets stay in one database and never travel on
Kafka: the dispatcher (``python -m docflow_gateway webhooks``) reads an
endpoint's URL and secret here when it sends.

* ``webhook_endpoints``: a tenant's endpoint: URL, the event kinds it wants,
  its secret (kept as given, since signing needs it), when it was made; after
  a rotation, the previous secret and until when it still signs too.
* ``webhook_deliveries``: one row per event and endpoint (its id derives from
  both, ``domain.webhooks.delivery_id``), updated at each attempt: its state,
  attempts, the endpoint's last answer (status, an excerpt), and the body
  sent (so a re-drive sends the same bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    JSON,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from docflow_gateway.adapters.registry import Base
from docflow_gateway.domain.webhooks import Delivery
from docflow_shared.sql import UTCDateTime

EXCERPT_CHARS = 1000


class WebhookEndpoint(Base):
    """A URL a tenant registered for some kinds of events."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_tenant", "tenant_id"),)

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    kinds: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(String(200))
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The secret before the last rotation, signing too until previous_secret_until.
    previous_secret: Mapped[str | None] = mapped_column(String(128), default=None)
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    def target(self) -> Target:
        return Target(
            self.id,
            self.url,
            self.secret,
            list(self.kinds),
            self.created_at,
            self.previous_secret,
            self.previous_secret_until,
        )


class DeliveryState:
    PENDING = "pending"  # re-driven, about to be sent again
    RETRYING = "retrying"  # waiting on a retry topic
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # out of retries: on the dead-letter topic
    REFUSED = "refused"  # the address is not one docflow may send to


class WebhookDelivery(Base):
    """One event for one endpoint, and how its delivery went."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint_seq", "endpoint_id", "seq"),
        Index("ix_webhook_deliveries_last_attempt", "last_attempt_at"),
    )

    # The order deliveries were first seen (the listing's, newest first).
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[UUID] = mapped_column(Uuid, unique=True)
    endpoint_id: Mapped[UUID] = mapped_column(Uuid)
    tenant_id: Mapped[str] = mapped_column(String(64))
    document_id: Mapped[UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(String(EXCERPT_CHARS))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def delivery(self, *, redrive: bool = False) -> Delivery:
        return Delivery(
            delivery_id=self.id,
            endpoint_id=self.endpoint_id,
            tenant_id=self.tenant_id,
            document_id=self.document_id,
            kind=self.kind,
            occurred_at=self.occurred_at,
            body=self.body,
            redrive=redrive,
        )


@dataclass(frozen=True)
class Target:
    """Where a delivery goes: what the dispatcher needs of an endpoint."""

    id: UUID
    url: str
    secret: str
    kinds: list[str]
    created_at: datetime
    previous_secret: str | None = None
    previous_secret_until: datetime | None = None

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The secrets a delivery sent ``now`` is signed with: the current one, and
        the previous one while a rotation's overlap lasts."""
        if (
            self.previous_secret is not None
            and self.previous_secret_until is not None
            and now < self.previous_secret_until
        ):
            return (self.secret, self.previous_secret)
        return (self.secret,)


@dataclass(frozen=True)
class DeliveryPage:
    deliveries: list[WebhookDelivery]
    # The cursor of the next page (a ``seq``); None on the last.
    next: int | None


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= EXCERPT_CHARS:
        return text
    return text[: EXCERPT_CHARS - 1] + "…"


class WebhookStore:
    """Endpoints and deliveries of every tenant; each query names its tenant."""

    def __init__(
        self,
        engine: AsyncEngine,
        writing: Callable[[], AbstractAsyncContextManager[None]] = nullcontext,
    ) -> None:
        self.engine = engine
        # SqlRegistry.writing: one writer at a time on SQLite within a process.
        self._writing = writing

    def _insert(self) -> Any:
        return postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert

    async def check(self) -> None:
        async with self.engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")

    # -- endpoints -----------------------------------------------------------

    async def add_endpoint(
        self, tenant_id: str, url: str, kinds: list[str], description: str | None, secret: str
    ) -> WebhookEndpoint:
        endpoint = WebhookEndpoint(
            id=uuid4(),
            tenant_id=tenant_id,
            url=url,
            kinds=kinds,
            description=description,
            secret=secret,
            created_at=datetime.now(UTC),
            previous_secret=None,
            previous_secret_until=None,
        )
        values = {c.key: getattr(endpoint, c.key) for c in WebhookEndpoint.__table__.columns}
        async with self._writing(), self.engine.begin() as connection:
            await connection.execute(insert(WebhookEndpoint), [values])
        return endpoint

    async def count_endpoints(self, tenant_id: str) -> int:
        async with self.engine.connect() as connection:
            found = await connection.scalar(
                select(func.count())
                .select_from(WebhookEndpoint)
                .where(WebhookEndpoint.tenant_id == tenant_id)
            )
        return int(found or 0)

    async def endpoints(self, tenant_id: str) -> list[WebhookEndpoint]:
        query = (
            select(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == tenant_id)
            .order_by(WebhookEndpoint.created_at)
        )
        async with self.engine.connect() as connection:
            return [WebhookEndpoint(**row._mapping) for row in await connection.execute(query)]

    async def endpoint(self, tenant_id: str, endpoint_id: UUID) -> WebhookEndpoint | None:
        query = select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.tenant_id == tenant_id
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return WebhookEndpoint(**row._mapping) if row is not None else None

    async def remove_endpoint(self, tenant_id: str, endpoint_id: UUID) -> bool:
        """Forget the endpoint and its deliveries; deliveries waiting on a retry
        topic are dropped when they come back."""
        async with self._writing(), self.engine.begin() as connection:
            removed = await connection.execute(
                delete(WebhookEndpoint).where(
                    WebhookEndpoint.id == endpoint_id, WebhookEndpoint.tenant_id == tenant_id
                )
            )
            if removed.rowcount != 1:
                return False
            await connection.execute(
                delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
            )
        return True

    async def rotate_secret(
        self, tenant_id: str, endpoint_id: UUID, secret: str, overlap_until: datetime
    ) -> bool:
        """Make ``secret`` the endpoint's; the one it replaces still signs until
        ``overlap_until`` (a secret still in its overlap is dropped)."""
        async with self._writing(), self.engine.begin() as connection:
            changed = await connection.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.tenant_id == tenant_id)
                .values(
                    previous_secret=WebhookEndpoint.secret,
                    previous_secret_until=overlap_until,
                    secret=secret,
                )
            )
        return bool(changed.rowcount == 1)

    async def targets(self, tenant_id: str) -> list[Target]:
        """The tenant's endpoints, with their secrets (for the dispatcher only)."""
        return [e.target() for e in await self.endpoints(tenant_id)]

    async def target(self, tenant_id: str, endpoint_id: UUID) -> Target | None:
        e = await self.endpoint(tenant_id, endpoint_id)
        return e.target() if e else None

    # -- deliveries ----------------------------------------------------------

    async def state(self, delivery_id: UUID) -> str | None:
        """The delivery's state; None before its first attempt was recorded."""
        async with self.engine.connect() as connection:
            found = await connection.scalar(
                select(WebhookDelivery.state).where(WebhookDelivery.id == delivery_id)
            )
        return None if found is None else str(found)

    async def attempted(
        self, delivery: Delivery, state: str, status: int | None, excerpt: str | None
    ) -> None:
        """Record an attempt and what the endpoint answered (the first makes the
        row): one write per attempt."""
        now = datetime.now(UTC)
        answer: dict[str, Any] = {
            "state": state,
            "response_status": status,
            "response_excerpt": _cut(excerpt),
            "last_attempt_at": now,
        }
        if state == DeliveryState.DELIVERED:
            answer["delivered_at"] = now
        first = {
            "id": delivery.delivery_id,
            "endpoint_id": delivery.endpoint_id,
            "tenant_id": delivery.tenant_id,
            "document_id": delivery.document_id,
            "kind": delivery.kind.value,
            "occurred_at": delivery.occurred_at,
            "body": delivery.body,
            "attempts": 1,
            **answer,
        }
        statement = (
            self._insert()(WebhookDelivery)
            .values(first)
            .on_conflict_do_update(
                index_elements=["id"],
                set_={**answer, "attempts": WebhookDelivery.attempts + 1},
            )
        )
        async with self._writing(), self.engine.begin() as connection:
            await connection.execute(statement)

    async def deliveries(
        self, tenant_id: str, endpoint_id: UUID, limit: int, state: str | None = None
    ) -> list[WebhookDelivery]:
        """The endpoint's latest deliveries, newest first."""
        return (await self.page(tenant_id, endpoint_id, limit, state=state)).deliveries

    async def page(
        self,
        tenant_id: str,
        endpoint_id: UUID,
        limit: int,
        *,
        before: int | None = None,
        state: str | None = None,
    ) -> DeliveryPage:
        """The endpoint's deliveries first seen before cursor position ``before``
        (all when None), newest first, ``limit`` of them."""
        query = (
            select(WebhookDelivery)
            .where(
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.tenant_id == tenant_id,
            )
            .order_by(WebhookDelivery.seq.desc())
            .limit(limit + 1)
        )
        if before is not None:
            query = query.where(WebhookDelivery.seq < before)
        if state is not None:
            query = query.where(WebhookDelivery.state == state)
        async with self.engine.connect() as connection:
            found = [WebhookDelivery(**row._mapping) for row in await connection.execute(query)]
        more = len(found) > limit
        found = found[:limit]
        return DeliveryPage(found, found[-1].seq if more else None)

    async def prune(self, older_than: datetime, batch: int = 10_000) -> int:
        """Forget deliveries last attempted before ``older_than`` (except those still
        waiting for a retry or a re-drive), at most ``batch`` of them; how many."""
        old = (
            select(WebhookDelivery.seq)
            .where(
                WebhookDelivery.last_attempt_at < older_than,
                WebhookDelivery.state.not_in((DeliveryState.RETRYING, DeliveryState.PENDING)),
            )
            .limit(batch)
        )
        async with self._writing(), self.engine.begin() as connection:
            removed = await connection.execute(
                delete(WebhookDelivery).where(WebhookDelivery.seq.in_(old.scalar_subquery()))
            )
        return int(removed.rowcount or 0)

    async def delivery(
        self, tenant_id: str, endpoint_id: UUID, delivery_id: UUID
    ) -> WebhookDelivery | None:
        query = select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.tenant_id == tenant_id,
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return WebhookDelivery(**row._mapping) if row is not None else None

    async def requeued(self, delivery_id: UUID) -> None:
        """A re-drive was asked for: pending again until the dispatcher sends it."""
        async with self._writing(), self.engine.begin() as connection:
            await connection.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id)
                .values(state=DeliveryState.PENDING)
            )
