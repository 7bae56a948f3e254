"""The read model's writer: events folded into their rows, each applied once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from docflow_shared.events import Event, ReindexEvent
from docflow_status.adapters.tables import (
    DocumentRow,
    ProcessedEvent,
    ReindexRow,
    to_row,
    to_state,
)
from docflow_status.domain.projection import TERMINAL, Fold, Projected
from docflow_status.domain.reindexes import evolve as evolve_reindex

# How often a batch is read again after another writer got in first.
_CONFLICT_RETRIES = 3


class SqlProjector:
    """Applies events to the documents table exactly once each."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def apply(self, event: Event, fold: Fold) -> bool:
        """Fold one event into its document; ``False`` if it was applied before."""
        return (await self.apply_all([event], fold)).applied == 1

    async def apply_all(self, events: Sequence[Event], fold: Fold) -> Projected:
        """Fold a batch of events into their documents, in order, in one transaction.

        Delivery is at-least-once, so an event can arrive twice (a redelivery
        after a crash before the offset commit). Recording each applied
        ``event_id`` in the same transaction as the change makes applying it
        idempotent: the batch's changes and its ids are written together or
        not at all, and an id found among those already applied is skipped.

        One transaction per batch, not per event: the ids are checked in one
        query and each document is read and written once.

        An event that names a known document under another tenant is not
        applied (``Projected.rejected``), in a replay alike.
        """
        for _ in range(_CONFLICT_RETRIES):
            try:
                return await self._apply_all(events, fold)
            except IntegrityError:
                # Another replica (a rebalance in progress) applied some of
                # these events or created one of the documents first: read again.
                continue
        return await self._apply_all(events, fold)

    async def _apply_all(self, events: Sequence[Event], fold: Fold) -> Projected:
        # The first of events with one id, as when they come in separate batches:
        # an event published again after a crash (DocumentIndexed, whose id is
        # per attempt) can differ from its first copy in occurred_at.
        unique: list[Event] = []
        kept: set[UUID] = set()
        for one in events:
            if one.event_id not in kept:
                kept.add(one.event_id)
                unique.append(one)
        if not unique:
            return Projected(0, {})
        async with self._sessions.begin() as session:
            seen = set(
                await session.scalars(
                    select(ProcessedEvent.event_id).where(
                        ProcessedEvent.event_id.in_([e.event_id for e in unique])
                    )
                )
            )
            rows = {
                row.id: row
                for row in await session.scalars(
                    select(DocumentRow).where(DocumentRow.id.in_({e.document_id for e in unique}))
                )
            }
            states = {document_id: to_state(row) for document_id, row in rows.items()}
            # A document's tenant never changes: an event that names a known
            # document (stored, or created earlier in this batch) under another
            # tenant is forged, and one tenant must not change another's document.
            owners = {document_id: state.tenant_id for document_id, state in states.items()}
            fresh: list[Event] = []
            rejected: list[Event] = []
            for event in unique:
                if event.event_id in seen:
                    continue
                owner = owners.setdefault(event.document_id, event.tenant_id)
                (fresh if owner == event.tenant_id else rejected).append(event)
            changes: dict[UUID, int] = {}
            was_terminal = {
                e.document_id: e.document_id in states and states[e.document_id].status in TERMINAL
                for e in fresh
            }
            for event in fresh:
                states[event.document_id] = fold(states.get(event.document_id), event)
                changes[event.document_id] = changes.get(event.document_id, 0) + 1
            touched = datetime.now(UTC)
            for document_id, count in changes.items():
                row = rows.get(document_id)
                if row is None:
                    row = rows[document_id] = DocumentRow(version=0)
                    session.add(row)
                to_row(states[document_id], row)
                row.version += count
                row.touched_at = touched
            if fresh:
                await session.execute(
                    insert(ProcessedEvent), [ProcessedEvent.values_of(e) for e in fresh]
                )
        refused = {e.event_id for e in rejected}
        about = {e.document_id for e in unique if e.event_id not in refused}
        return Projected(
            len(fresh),
            {
                document_id: (rows[document_id].version, state)
                for document_id, state in states.items()
                if document_id in about
            },
            finished=[
                states[document_id]
                for document_id, terminal in was_terminal.items()
                if not terminal and states[document_id].status in TERMINAL
            ],
            rejected=rejected,
        )

    async def apply_reindexes(self, events: Sequence[ReindexEvent]) -> None:
        """Fold re-embedding events into their operations' rows, in one transaction.

        The fold is idempotent, so a redelivered event needs no bookkeeping.
        """
        if not events:
            return
        for attempt in range(_CONFLICT_RETRIES + 1):
            try:
                async with self._sessions.begin() as session:
                    rows = {
                        row.id: row
                        for row in await session.scalars(
                            select(ReindexRow).where(
                                ReindexRow.id.in_({e.reindex_id for e in events})
                            )
                        )
                    }
                    states = {i: ReindexRow.state_of(row) for i, row in rows.items()}
                    for event in events:
                        states[event.reindex_id] = evolve_reindex(
                            states.get(event.reindex_id), event
                        )
                    for reindex_id, state in states.items():
                        row = rows.get(reindex_id)
                        if row is None:
                            row = ReindexRow(id=reindex_id)
                            session.add(row)
                        row.tenant_id = state.tenant_id
                        row.state = ReindexRow.json_of(state)
                        row.updated_at = state.updated_at
                return
            except IntegrityError:
                # Another replica created the row first: read again.
                if attempt == _CONFLICT_RETRIES:
                    raise
