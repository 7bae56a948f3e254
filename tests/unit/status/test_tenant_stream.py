"""The tenant-wide status stream (GET /v1/documents/stream), on both databases.

The stream never ends by itself, and httpx's ASGI transport waits for a whole
body, so these tests read the route's event generator directly; the e2e
corpus test reads it over HTTP from the running service.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from docflow_shared.events import DocumentDeleted, Event
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.domain.projection import evolve
from docflow_status.entrypoints.routes.streams import _tenant_changes
from support.histories import envelope, successful


def changes_of(read_model: SqlReadModel, since: datetime) -> AsyncIterator[dict[str, str]]:
    """Tenant t1's stream, polling often."""
    return _tenant_changes(read_model, "t1", since, poll_s=0.01)


async def take(stream: AsyncIterator[dict[str, str]], n: int) -> list[dict[str, str]]:
    return [await asyncio.wait_for(anext(stream), 10) for _ in range(n)]


def is_last_version_of(events: list[Event], sent: dict[str, str]) -> bool:
    body = json.loads(sent["data"])
    return body["id"] == str(events[0].document_id) and body["version"] == len(events)


async def apply(read_model: SqlReadModel, events: list[Event]) -> None:
    for event in events:
        await read_model.apply(event, evolve)


async def test_changes_to_the_tenants_documents_arrive_in_order(read_model: SqlReadModel) -> None:
    stream = changes_of(read_model, datetime.now(UTC) - timedelta(minutes=1))
    first, second = successful(), successful()
    other_tenant = [e.model_copy(update={"tenant_id": "t2"}) for e in successful()]
    await apply(read_model, first[:1])
    [created] = await take(stream, 1)
    assert created["event"] == "status"
    body = json.loads(created["data"])
    assert (body["id"], body["status"], body["version"]) == (
        str(first[0].document_id),
        "pending",
        1,
    )

    await apply(read_model, other_tenant)
    await apply(read_model, second)
    [latest] = await take(stream, 1)
    # Polled after the whole history: one event with the latest version, not one per change.
    body = json.loads(latest["data"])
    assert (body["id"], body["status"], body["version"]) == (
        str(second[0].document_id),
        "completed",
        len(second),
    )
    assert int(latest["id"]) > int(created["id"])

    await apply(read_model, [DocumentDeleted(**envelope(first[0].document_id, 99))])
    [deleted] = await take(stream, 1)
    assert deleted["event"] == "deleted"
    assert json.loads(deleted["data"]) == {"id": str(first[0].document_id)}
    await stream.aclose()


async def test_a_stream_resumed_from_an_event_id_starts_after_it(read_model: SqlReadModel) -> None:
    stream = changes_of(read_model, datetime.now(UTC) - timedelta(minutes=1))
    old, early, late = successful(), successful(), successful()
    await apply(read_model, old)
    await asyncio.sleep(2.5)  # longer than the moment a resumed stream looks back
    await apply(read_model, early)
    # Until the stream has shown `early`'s last version.
    seen = (await take(stream, 1))[0]
    while not is_last_version_of(early, seen):
        seen = (await take(stream, 1))[0]
    await stream.aclose()
    await apply(read_model, late)

    resumed_at = datetime.fromtimestamp(0, UTC) + timedelta(microseconds=int(seen["id"]))
    resumed = changes_of(read_model, resumed_at)
    again = []
    while (body := json.loads((await take(resumed, 1))[0]["data"]))["id"] != str(
        late[0].document_id
    ):
        again.append(body)
    # Only what changed at the resume point may come again (the stream looks back
    # a moment for late commits), and never an older version than was sent.
    assert all(b["id"] == str(early[0].document_id) for b in again)  # not `old`
    assert all(b["version"] == len(early) for b in again)
    await resumed.aclose()
