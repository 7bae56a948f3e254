"""The read model's writer: events folded into their rows, each applied once."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import cast
from uuid import UUID

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from docflow_shared.events import Event, ReindexEvent, parse_any
from docflow_status.adapters.tables import (
    DocumentRow,
    ProcessedEvent,
    ReindexRow,
    UnownedEvent,
    to_row,
    to_state,
)
from docflow_status.domain import ownership
from docflow_status.domain.projection import TERMINAL, Fold, Projected
from docflow_status.domain.reindexes import evolve as evolve_reindex

# How often a batch is read again after another writer got in first.
_CONFLICT_RETRIES = 3


def _first_copies(events: Iterable[Event], key: Callable[[Event], Hashable]) -> list[Event]:
    """``events`` in order, each key's first copy only."""
    kept: set[Hashable] = set()
    first: list[Event] = []
    for event in events:
        if key(event) not in kept:
            kept.add(key(event))
            first.append(event)
    return first


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

        A document is its upload's tenant's (``domain/ownership.py``): an
        event under another tenant, or with a claim check that is not its
        tenant's and document's, is not applied (``Projected.rejected``); an
        event of a document whose upload has not been read yet is parked
        (table ``unowned_events``) and applied or rejected in the transaction
        that reads the upload. Live, in a rebuild and in a replay alike.
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
        # per attempt) can differ from its first copy in occurred_at. Keyed by
        # tenant too, so that a forged copy cannot take the real one's place.
        unique = _first_copies(events, key=lambda e: (e.event_id, e.tenant_id))
        if not unique:
            return Projected(0, {})
        async with self._sessions.begin() as session:
            seen = set(
                await session.scalars(
                    select(ProcessedEvent.event_id).where(
                        ProcessedEvent.event_id.in_({e.event_id for e in unique})
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
            # A document is its upload's tenant's (domain/ownership.py); events
            # of a document whose upload has not been read wait for it.
            batch = ownership.sort(
                [e for e in unique if e.event_id not in seen],
                {document_id: state.tenant_id for document_id, state in states.items()},
            )
            owned, rejected = batch.owned, batch.rejected
            if batch.claimed:
                # Delivered before this batch: folded before it, in the order
                # they came (one topic's events must not overtake each other).
                earlier = await self._unpark(session, batch.claimed, seen)
                owned = earlier.owned + owned
                rejected = earlier.rejected + rejected
            await self._park(session, batch.parked)
            # One copy of each event: one parked earlier may be in this batch again.
            owned = _first_copies(owned, key=lambda e: e.event_id)
            changes: dict[UUID, int] = {}
            was_terminal = {
                e.document_id: e.document_id in states and states[e.document_id].status in TERMINAL
                for e in owned
            }
            for event in owned:
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
            if owned:
                await session.execute(
                    insert(ProcessedEvent), [ProcessedEvent.values_of(e) for e in owned]
                )
        # Every document the batch was about, as stored, by its owner's events
        # (duplicates too: a redelivered batch announces again); a forged or
        # parked event announces nothing.
        about = {e.document_id for e in owned} | {
            e.document_id
            for e in unique
            if e.event_id in seen
            and e.document_id in rows
            and states[e.document_id].tenant_id == e.tenant_id
        }
        return Projected(
            len(owned),
            {
                document_id: (rows[document_id].version, states[document_id])
                for document_id in about
            },
            finished=[
                states[document_id]
                for document_id, terminal in was_terminal.items()
                if not terminal and states[document_id].status in TERMINAL
            ],
            rejected=rejected,
            parked=len(batch.parked),
        )

    @staticmethod
    async def _unpark(
        session: AsyncSession, claimed: dict[UUID, str], seen: set[UUID]
    ) -> ownership.Sorted:
        """The events parked for documents this batch's uploads claimed, sorted and removed."""
        parked = list(
            await session.scalars(
                select(UnownedEvent)
                .where(UnownedEvent.document_id.in_(claimed))
                .order_by(UnownedEvent.parked_at)
            )
        )
        if not parked:
            return ownership.Sorted()
        await session.execute(delete(UnownedEvent).where(UnownedEvent.document_id.in_(claimed)))
        events = [cast(Event, parse_any(row.body)) for row in parked]
        applied = set(
            await session.scalars(
                select(ProcessedEvent.event_id).where(
                    ProcessedEvent.event_id.in_({e.event_id for e in events})
                )
            )
        )
        return ownership.sort([e for e in events if e.event_id not in applied | seen], claimed)

    @staticmethod
    async def _park(session: AsyncSession, events: list[Event]) -> None:
        """Keep ``events`` (each once) until their documents' uploads are read."""
        if not events:
            return
        there = {
            (row.event_id, row.tenant_id)
            for row in await session.execute(
                select(UnownedEvent.event_id, UnownedEvent.tenant_id).where(
                    UnownedEvent.event_id.in_({e.event_id for e in events})
                )
            )
        }
        now = datetime.now(UTC)
        rows = {
            (e.event_id, e.tenant_id): {
                "event_id": e.event_id,
                "tenant_id": e.tenant_id,
                "document_id": e.document_id,
                "body": e.model_dump_json(),
                # A microsecond apart: read back in the order they came.
                "parked_at": now + timedelta(microseconds=n),
            }
            for n, e in enumerate(events)
            if (e.event_id, e.tenant_id) not in there
        }
        if rows:
            await session.execute(insert(UnownedEvent), list(rows.values()))

    async def unowned_before(self, before: datetime, limit: int = 500) -> list[Event]:
        """The events parked before ``before`` (their upload never came), oldest first."""
        async with self._sessions() as session:
            bodies = await session.scalars(
                select(UnownedEvent.body)
                .where(UnownedEvent.parked_at < before)
                .order_by(UnownedEvent.parked_at)
                .limit(limit)
            )
            return [cast(Event, parse_any(body)) for body in bodies]

    async def forget_unowned(self, events: Sequence[Event]) -> None:
        """Remove ``events`` from those parked (once they are dead-lettered)."""
        async with self._sessions.begin() as session:
            for event in events:
                await session.execute(
                    delete(UnownedEvent).where(
                        UnownedEvent.event_id == event.event_id,
                        UnownedEvent.tenant_id == event.tenant_id,
                    )
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
