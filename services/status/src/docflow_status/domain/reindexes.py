"""The status of re-embedding operations, folded from their events.

The fold needs no deduplication: applying an event twice gives the same
state, progress never goes back, and a finished operation stays finished
(completed over failed), whatever order the four topics deliver in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal
from uuid import UUID

from docflow_shared.events import (
    ReindexAdvanced,
    ReindexCompleted,
    ReindexEvent,
    ReindexFailed,
    ReindexRequested,
)

ReindexStatus = Literal["pending", "running", "completed", "failed"]

# The first pass embeds (most of the time); the second only checks.
_FIRST_PASS_SHARE = 90


@dataclass(frozen=True)
class ReindexState:
    id: UUID
    tenant_id: str
    status: ReindexStatus
    backend: str
    model: str
    dimensions: int | None
    documents: int | None  # how many documents were chosen; None: all
    source: str | None
    target: str | None
    sweep: int
    done: int
    total: int | None
    embedded: int
    progress: int
    switched: bool
    message: str
    error: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")


def _new(event: ReindexEvent) -> ReindexState:
    embedding = getattr(event, "embedding", None)
    chosen = getattr(event, "document_ids", None)
    return ReindexState(
        id=event.reindex_id,
        tenant_id=event.tenant_id,
        status="pending",
        backend=embedding.backend if embedding else "",
        model=embedding.model if embedding else "",
        dimensions=embedding.dimensions if embedding else None,
        documents=len(chosen) if chosen is not None else None,
        source=None,
        target=None,
        sweep=0,
        done=0,
        total=None,
        embedded=0,
        progress=0,
        switched=False,
        message="",
        error=None,
        created_at=event.occurred_at,
        updated_at=event.occurred_at,
    )


def _progress(sweep: int, done: int, total: int) -> int:
    share = done / total if total else 1.0
    if sweep == 1:
        return min(_FIRST_PASS_SHARE, int(share * _FIRST_PASS_SHARE))
    return _FIRST_PASS_SHARE + min(9, int(share * 9))


def evolve(state: ReindexState | None, event: ReindexEvent) -> ReindexState:
    """The operation's state after ``event``."""
    current = state or _new(event)
    if isinstance(event, ReindexRequested):
        # The request may arrive after later events (another topic): it only fills in.
        current = replace(
            current,
            backend=event.embedding.backend,
            model=event.embedding.model,
            dimensions=event.embedding.dimensions,
            documents=len(event.document_ids) if event.document_ids is not None else None,
            created_at=min(current.created_at, event.occurred_at),
        )
        if current.status == "pending":
            model = event.embedding.model
            current = replace(
                current, message=f"waiting for the embedder to start re-embedding with {model}"
            )
        return current
    current = replace(current, updated_at=max(current.updated_at, event.occurred_at))
    if isinstance(event, ReindexAdvanced):
        if (event.sweep, event.done) < (current.sweep, current.done):
            return current  # an older step, read late
        current = replace(
            current,
            source=event.source,
            target=event.target,
            sweep=event.sweep,
            done=event.done,
            total=event.total,
            embedded=max(current.embedded, event.embedded),
        )
        if current.finished:
            return current
        if event.sweep == 1:
            message = (
                f"re-embedding with {event.embedding.model}: {event.done} of {event.total} "
                f"chunks of {event.source} read, {current.embedded} embedded into {event.target}"
            )
        else:
            message = (
                f"checking for chunks written meanwhile: {event.done} of {event.total} "
                f"({current.embedded} embedded into {event.target} in all)"
            )
        return replace(
            current,
            status="running",
            progress=max(current.progress, _progress(event.sweep, event.done, event.total)),
            message=message,
        )
    if isinstance(event, ReindexCompleted):
        # Completed wins over failed, whichever came first: the switch happened.
        return replace(
            current,
            status="completed",
            source=event.source,
            target=event.target,
            embedded=max(current.embedded, event.embedded),
            progress=100,
            switched=event.switched,
            message=event.message,
            error=None,
        )
    if isinstance(event, ReindexFailed) and current.status != "completed":
        return replace(
            current,
            status="failed",
            message=f"re-embedding stopped: {event.reason}",
            error=event.reason,
        )
    return current
