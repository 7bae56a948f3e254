"""The status service's ports: what its use cases and its API need of the read model.

``adapters.read_model.SqlReadModel`` implements them all; tests pass fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from docflow_shared.events import Event, ReindexEvent
from docflow_status.domain.projection import DocumentState, Fold, Projected, Status
from docflow_status.domain.queries import DocumentQuery, Page
from docflow_status.domain.queues import QueueView
from docflow_status.domain.reindexes import ReindexState
from docflow_status.domain.timeline import TimelineEntry


class ReadModel(Protocol):
    """The read-model port: applies a fold to a batch of events, each once."""

    async def apply_all(self, events: Sequence[Event], fold: Fold) -> Projected: ...

    async def apply_reindexes(self, events: Sequence[ReindexEvent]) -> None:
        """Fold re-embedding operations' events into their status."""
        ...


class UnownedEvents(Protocol):
    """Events kept aside until their document's upload is read (domain/ownership.py)."""

    async def unowned_before(self, before: datetime, limit: int) -> list[Event]:
        """The events parked before ``before``, oldest first."""
        ...

    async def forget_unowned(self, events: Sequence[Event]) -> None:
        """Remove ``events`` (once dead-lettered) from those kept aside."""
        ...


class QuietDocuments(Protocol):
    """The read-model query the watchdog needs."""

    async def quiet_since(
        self, cutoff: datetime, limit: int, after: tuple[datetime, UUID] | None = None
    ) -> list[DocumentState]: ...


class ReindexReader(Protocol):
    """The read-model query a re-embedding operation's status needs."""

    async def reindex(self, reindex_id: UUID, tenant_id: str) -> ReindexState | None: ...


class DocumentReader(ReindexReader, Protocol):
    """The read-model queries the status API needs."""

    async def get(self, document_id: UUID, tenant_id: str) -> DocumentState | None: ...

    async def find(self, tenant_id: str, query: DocumentQuery) -> Page: ...

    async def counts(self, tenant_id: str) -> dict[Status, int]: ...

    async def history(self, document_id: UUID, tenant_id: str) -> list[TimelineEntry] | None: ...

    async def versioned(
        self, document_id: UUID, tenant_id: str
    ) -> tuple[int, DocumentState] | None: ...

    async def touched_since(
        self, tenant_id: str, since: datetime, limit: int = ...
    ) -> list[tuple[int, DocumentState, datetime]]: ...


class QueueViews(Protocol):
    """The stages' queues as last measured (domain/queues.py), for the status API."""

    async def view(self) -> QueueView: ...
