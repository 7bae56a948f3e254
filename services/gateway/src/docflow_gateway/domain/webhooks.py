"""Webhooks, the rules (no I/O): which status change is which event kind, the
webhook id a receiver deduplicates on, the payload, the secret, and what a
delivery carries while it waits for a retry (docs/events.md, "Webhooks").

Deliveries follow the Standard Webhooks specification: a JSON body
``{"type": "document.<kind>", "timestamp": …, "data": <the status>}`` signed
with the endpoint's ``whsec_`` secret (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``; the signing is in ``adapters/egress.py``).
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid5

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from docflow_shared.events import DocumentStatusChanged, Status
from docflow_shared.events.envelope import TenantId


class Kind(StrEnum):
    """What an endpoint may ask to be told about a document."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Any change of a pending or processing document (stage, progress, stalls).
    PROGRESS = "progress"


_TERMINAL = {
    Status.COMPLETED: Kind.COMPLETED,
    Status.FAILED: Kind.FAILED,
    Status.CANCELLED: Kind.CANCELLED,
}

# A body is at most this (a status snapshot is about 1 KiB; its message and
# error are capped by the events' bounds).
MAX_BODY_BYTES = 64 * 1024


def kind_of(status: DocumentStatusChanged) -> Kind | None:
    """The event kind a status snapshot is; None for a deleted document's last one."""
    if status.deleted:
        return None
    return _TERMINAL.get(status.status, Kind.PROGRESS)


def event_key(status: DocumentStatusChanged, kind: Kind) -> str:
    """What makes two snapshots the same event: a terminal status of one attempt
    (snapshots after it, a re-published one, are the same event again), or one
    version of the status (progress)."""
    if kind is Kind.PROGRESS:
        return f"{status.document_id}/v{status.version}"
    return f"{status.document_id}/{status.attempt}/{kind.value}"


def delivery_id(endpoint_id: UUID, key: str) -> UUID:
    """The delivery of one event to one endpoint: the same however often the
    event is read (redeliveries, a republished snapshot, retries, re-drives)."""
    return uuid5(endpoint_id, key)


def webhook_id(delivery: UUID) -> str:
    """The ``webhook-id`` header: the receiver's idempotency key."""
    return f"msg_{delivery.hex}"


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def payload(status: DocumentStatusChanged, kind: Kind) -> str:
    """The body sent: the status as ``GET /v1/documents/{id}`` and the status topic
    show it (``document_id``, ``status``, ``stage``, ``progress``, ``error`` …)."""
    data = status.model_dump(mode="json", exclude={"event_type", "schema_version"})
    return json.dumps(
        {
            "type": f"document.{kind.value}",
            "timestamp": status.occurred_at.isoformat(),
            "data": data,
        },
        separators=(",", ":"),
    )


class Delivery(BaseModel):
    """One event for one endpoint, as parked on the webhooks' retry topics (and kept
    on the dead-letter topic when it gives up). No secret: the dispatcher reads the
    endpoint's from the gateway's database when it sends."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    delivery_id: UUID
    endpoint_id: UUID
    tenant_id: TenantId
    document_id: UUID
    kind: Kind
    # When the status changed (the latency measured is from here to the answer).
    occurred_at: AwareDatetime
    body: str = Field(max_length=MAX_BODY_BYTES)
    # Sent even if delivered before (a re-drive asked for it).
    redrive: bool = False

    @property
    def webhook_id(self) -> str:
        return webhook_id(self.delivery_id)

    @classmethod
    def of(cls, status: DocumentStatusChanged, kind: Kind, endpoint_id: UUID) -> Delivery:
        return cls(
            delivery_id=delivery_id(endpoint_id, event_key(status, kind)),
            endpoint_id=endpoint_id,
            tenant_id=status.tenant_id,
            document_id=status.document_id,
            kind=kind,
            occurred_at=status.occurred_at,
            body=payload(status, kind),
        )


def wanted(kinds: list[str], kind: Kind, registered_at: datetime, occurred_at: datetime) -> bool:
    """Whether an endpoint registered at ``registered_at`` for ``kinds`` gets an
    event of ``kind`` that happened at ``occurred_at``: never one from before it
    existed (a new dispatcher group reads the compacted topic from its start)."""
    return kind.value in kinds and occurred_at >= registered_at
