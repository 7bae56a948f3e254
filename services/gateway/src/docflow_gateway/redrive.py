"""Re-drive: once the cause is fixed, a new attempt of each of a tenant's
dead-lettered documents, from the stage that gave up.

One retry per document, however many of its messages were kept, through the
same operation as a client's retry (``operations.retry``). A document already
retried, completed or deleted since is skipped, with the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from docflow_gateway import operations
from docflow_gateway.adapters.deadletter_index import DeadLetterEntry, DeadLetterIndex
from docflow_gateway.adapters.registry import SqlRegistry
from docflow_gateway.adapters.status_client import StatusUnavailable
from docflow_gateway.operations import OperationRefused, StatusReader
from docflow_gateway.webhooks import SERVICE as WEBHOOKS_SERVICE
from docflow_shared.deadletters import Selection
from docflow_shared.messaging import Publish

# Waits until the index holds every dead letter on the topic now (at most a
# few seconds; DeadLetterIndexer.caught_up).
CatchUp = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class DeadLetters:
    """The dead-letter index (``deadletter_index.py``), and how to wait for it."""

    index: DeadLetterIndex
    caught_up: CatchUp


class EventStoreUnavailable(Exception):
    """The dead-letter index could not be read, or a retry's event was not
    acknowledged (the retries before it stand)."""


@dataclass(frozen=True)
class Retried:
    document_id: UUID
    # The attempt started; None in a dry run.
    attempt: int | None


@dataclass(frozen=True)
class Skipped:
    document_id: UUID
    reason: str


@dataclass(frozen=True)
class Redrive:
    """What a re-drive did: a new attempt per document, or why not."""

    # The tenant's dead letters that matched.
    dead_letters: int
    retried: list[Retried]
    skipped: list[Skipped]


async def tenants_dead_letters(
    dead_letters: DeadLetters, tenant_id: str, selection: Selection
) -> list[DeadLetterEntry]:
    """The dead letters about the tenant's documents that ``selection`` matches, in
    the index's order (oldest first), from the index; raises ``EventStoreUnavailable``."""
    await dead_letters.caught_up()
    try:
        return await dead_letters.index.matching(tenant_id, selection)
    except Exception as exc:
        raise EventStoreUnavailable(str(exc)) from exc


async def redrive(
    selection: Selection,
    *,
    tenant_id: str,
    correlation_id: str,
    dry_run: bool,
    dead_letters: DeadLetters,
    records: SqlRegistry,
    status: StatusReader,
    publish: Publish,
) -> Redrive:
    """Retry each document of the tenant's dead letters that ``selection`` matches (in a
    dry run, only say which). Raises ``EventStoreUnavailable`` or ``StatusUnavailable``."""
    letters = await tenants_dead_letters(dead_letters, tenant_id, selection)
    # A webhook delivery given up on is the endpoint's problem, not the document's:
    # it is re-driven on its own (POST /v1/webhooks/{id}/deliveries/{delivery}/redrive).
    documents = list(
        dict.fromkeys(
            letter.document_id
            for letter in letters
            if letter.document_id and letter.service != WEBHOOKS_SERVICE
        )
    )
    retried: list[Retried] = []
    skipped: list[Skipped] = []
    for document_id in documents:
        record = await records.get(document_id, tenant_id)
        if record is None:
            skipped.append(Skipped(document_id, "deleted"))
            continue
        if dry_run:
            retried.append(Retried(document_id, None))
            continue
        try:
            event = await operations.retry(
                record, status, correlation_id=correlation_id, publish=publish, records=records
            )
        except OperationRefused as exc:
            skipped.append(Skipped(document_id, str(exc)))
            continue
        except StatusUnavailable:
            raise
        except Exception as exc:
            raise EventStoreUnavailable(str(exc)) from exc
        retried.append(Retried(document_id, event.attempt))
    return Redrive(dead_letters=len(letters), retried=retried, skipped=skipped)
