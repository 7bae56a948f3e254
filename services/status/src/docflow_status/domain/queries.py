"""Listing documents: filters, and the cursor that continues a listing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from docflow_shared.events import Stage
from docflow_status.domain.projection import DocumentState, Status

# Where a page ended: the last document's creation time and id (newest first).
Position = tuple[datetime, UUID]


@dataclass(frozen=True)
class DocumentQuery:
    """Which documents, and how many per page."""

    status: Status | None = None
    stage: Stage | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None
    # Metadata terms (``key=value``): each tuple is one key's, any of which may match;
    # every tuple must (events/metadata.py).
    metadata: tuple[tuple[str, ...], ...] = ()
    filenames: tuple[str, ...] = ()
    document_ids: tuple[UUID, ...] = ()
    limit: int = 50
    after: Position | None = None


@dataclass(frozen=True)
class Page:
    documents: list[DocumentState]
    # Where the next page starts; None on the last page.
    next: Position | None


# A cursor is "<microseconds since 1970>.<document id in hex>": readable, and
# any string of this form is a position, so a cursor valid by the pattern is
# never refused (16 digits reach well past the year 2200).
CURSOR_PATTERN = r"^[0-9]{1,16}\.[0-9a-f]{32}$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(position: Position) -> str:
    created_at, document_id = position
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{document_id.hex}"


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; ``ValueError`` for a string not of the pattern."""
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise ValueError(f"not a cursor: {cursor!r}")
    micros, document_id = cursor.split(".")
    return _EPOCH + timedelta(microseconds=int(micros)), UUID(hex=document_id)
