"""Any document event → the read model.

The read model is just another event handler. It deduplicates because
delivery is at-least-once: the repository records each applied ``event_id``
in the same transaction as the change, so a redelivered event changes
nothing, and the fold (``domain.projection.evolve``) never moves a document
backwards when events from different topics arrive out of order.
"""

from __future__ import annotations

from typing import Protocol

from docflow_shared.events import Event
from docflow_status.domain.projection import Fold, evolve


class ReadModel(Protocol):
    """The read-model port: applies a fold to one event's document, once."""

    async def apply(self, event: Event, fold: Fold) -> bool: ...


async def project_event(event: Event, *, read_model: ReadModel) -> bool:
    """Apply one event to its document's status; ``False`` for a duplicate."""
    return await read_model.apply(event, evolve)
