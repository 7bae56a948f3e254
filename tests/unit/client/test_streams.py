"""The tenant's status stream through the client, from the real status app
served on a socket (an endless Server-Sent Events response cannot go through
the in-process transport, which waits for the whole body)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from functools import reduce
from itertools import islice
from uuid import UUID, uuid4

import pytest
from prometheus_client import CollectorRegistry

from docflow_client import AsyncDocflow, Docflow
from docflow_client.models import Status
from docflow_status.domain.projection import DocumentState, evolve
from docflow_status.entrypoints.app import StatusApi, create_app
from docflow_status.settings import StatusSettings
from support.histories import successful
from support.threaded import serving

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


class Touched:
    """The read model's changes: each state touched when the test made it."""

    def __init__(self, *states: DocumentState) -> None:
        now = datetime.now(UTC)
        self.changes = [(3 + n, state, now) for n, state in enumerate(states)]

    async def touched_since(
        self, tenant_id: str, since: datetime, limit: int = 500
    ) -> list[tuple[int, DocumentState, datetime]]:
        return [change for change in self.changes if change[2] >= since][:limit]

    async def get(self, document_id: UUID, tenant_id: str) -> DocumentState | None:
        return None


def states() -> tuple[DocumentState, DocumentState]:
    done = reduce(evolve, successful(), None)
    assert done is not None
    done = replace(done, tenant_id="default")
    gone = replace(done, id=uuid4(), deleted_at=datetime.now(UTC))
    return done, gone


def app(*states: DocumentState):  # type: ignore[no-untyped-def]
    return create_app(
        StatusApi(
            settings=StatusSettings(default_tenant="default", stream_poll_s=0.1),
            documents=Touched(*states),  # type: ignore[arg-type]
            checks={},
            registry=CollectorRegistry(),
        )
    )


def test_the_blocking_stream_yields_changes_and_deletions_as_they_come() -> None:
    done, gone = states()
    with (
        serving(app(done, gone), "status") as port,
        Docflow("http://127.0.0.1:9", f"http://127.0.0.1:{port}") as client,
    ):
        first, second = islice(client.stream(), 2)
    assert (first.kind, first.id, first.version) == ("status", done.id, 3)
    assert first.document is not None
    assert first.document.status == Status.COMPLETED
    assert first.event_id is not None
    assert first.event_id.isdigit()
    assert (second.kind, second.id, second.document) == ("deleted", gone.id, None)


async def test_the_async_stream_reconnects_with_the_last_event_id_and_gets_later_changes() -> None:
    done, _ = states()
    later = replace(done, id=uuid4())
    model = Touched(done)
    # One app whose read model the test changes between two connections.
    status = app()
    status.state.documents = model
    with serving(status, "status") as served:
        async with AsyncDocflow("http://127.0.0.1:9", f"http://127.0.0.1:{served}") as client:
            async for change in client.stream():
                first = change
                break
            model.changes.append((9, later, datetime.now(UTC)))
            async for change in client.stream(last_event_id=first.event_id):
                if change.id == later.id:
                    resumed = change
                    break
    assert first.id == done.id
    assert resumed.version == 9
