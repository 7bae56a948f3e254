"""Whose document an event is about: the tenant of its upload, and no one else's.

Anyone who can reach the brokers can publish an event (docs/architecture.md,
"Trust boundaries"), so the read model never lets an event decide who owns a
document, except one: the document's ``DocumentUploaded``, which the gateway
publishes under the caller's tenant and whose ``blob_key`` must be that
tenant's key for that document. Every other event is applied only if it names
the owner's tenant.

The status service reads several topics with no order between them, so an
event can arrive before its document's upload (a replay reads the topics in
whatever order it polls them). Such an event is *parked*, not applied and not
trusted, until the upload says whose document it is; it is then applied or
rejected, exactly as if the upload had come first. That way a live read
model, a rebuild and a replay agree, whatever order the topics interleave in
(``tests/unit/status/test_ownership_properties.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from uuid import UUID

from docflow_shared.errors import UntrustedEvent
from docflow_shared.events import DocumentRetryRequested, DocumentUploaded, Event
from docflow_shared.trust import check_claim

# An event the read model refused, and why (``UntrustedEvent.reason`` is the
# metric's label).
Rejected = tuple[Event, UntrustedEvent]


@dataclass
class Sorted:
    """A batch's events by what may be done with them."""

    # The owner's events: to be folded.
    owned: list[Event] = field(default_factory=list)
    # Events of documents whose upload has not been read yet: to be kept aside.
    parked: list[Event] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    # Documents whose owner this batch's uploads decided.
    claimed: dict[UUID, str] = field(default_factory=dict)


def claims(events: Iterable[Event], owners: Mapping[UUID, str]) -> dict[UUID, str]:
    """The owners that uploads among ``events`` give to documents without one.

    One document's uploads share a partition of the uploads topic, so
    "the first one" is the same live and in a replay; the gateway makes a
    document id once, so a second upload of it is a forgery in any case.
    """
    claimed: dict[UUID, str] = {}
    for event in events:
        if (
            isinstance(event, DocumentUploaded)
            and event.document_id not in owners
            and event.document_id not in claimed
            and untrusted(event, {}) is None
        ):
            claimed[event.document_id] = event.tenant_id
    return claimed


def untrusted(event: Event, owners: Mapping[UUID, str]) -> UntrustedEvent | None:
    """Why ``event`` must not be applied, given the documents' ``owners``; ``None`` if it may."""
    if isinstance(event, DocumentUploaded | DocumentRetryRequested):
        try:
            check_claim(event)
        except UntrustedEvent as exc:
            return exc
    owner = owners.get(event.document_id)
    if owner is not None and owner != event.tenant_id:
        return UntrustedEvent(
            "tenant_changed",
            f"event {event.event_id} names document {event.document_id} "
            f"under tenant {event.tenant_id!r}, but it is another tenant's",
        )
    return None


def sort(events: Iterable[Event], owners: Mapping[UUID, str]) -> Sorted:
    """``events`` (one batch, or events parked earlier) sorted against the known ``owners``."""
    events = list(events)
    result = Sorted(claimed=claims(events, owners))
    known = {**owners, **result.claimed}
    for event in events:
        reason = untrusted(event, known)
        if reason is not None:
            result.rejected.append((event, reason))
        elif event.document_id in known:
            result.owned.append(event)
        else:
            result.parked.append(event)
    return result


NO_UPLOAD = "no_upload"


def unclaimed(event: Event, parked_for_s: float) -> UntrustedEvent:
    """Why a parked event is given up: its document's upload never came."""
    return UntrustedEvent(
        NO_UPLOAD,
        f"event {event.event_id} names document {event.document_id}, whose upload was "
        f"not read in {parked_for_s:.0f} s (forged, or its upload was lost)",
    )
