"""Listing, counting, a document's timeline and its status stream, through HTTP on
the real read model (SQLite, and PostgreSQL marked integration)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from prometheus_client import CollectorRegistry

from docflow_shared.blobstore import original_key
from docflow_shared.events import DocumentDeleted, Event
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.domain.projection import evolve
from docflow_status.entrypoints.app import StatusApi, create_app
from docflow_status.entrypoints.routes.streams import STREAM_LOOKBACK, resume_from
from docflow_status.settings import StatusSettings
from support.histories import T0, envelope, failed_while_extracting, retry_of, successful


def shifted(events: list[Event], minutes: int, **update: Any) -> list[Event]:
    """The same history ``minutes`` later (new ids), with ``update`` applied to every event
    (and the claim check that goes with its tenant and document)."""
    moved = [
        e.model_copy(
            update={
                "event_id": uuid4(),
                "occurred_at": e.occurred_at + timedelta(minutes=minutes),
                **update,
            }
        )
        for e in events
    ]
    return [
        e.model_copy(update={"blob_key": original_key(e.tenant_id, e.document_id)})
        if hasattr(e, "blob_key")
        else e
        for e in moved
    ]


@pytest.fixture
async def http(read_model: SqlReadModel) -> AsyncIterator[httpx.AsyncClient]:
    api = StatusApi(
        settings=StatusSettings(default_tenant="t1", stream_poll_s=0.01),
        documents=read_model,
        checks={},
        registry=CollectorRegistry(),
    )
    transport = httpx.ASGITransport(app=create_app(api))
    async with httpx.AsyncClient(transport=transport, base_url="http://status") as client:
        yield client


async def apply(read_model: SqlReadModel, events: list[Event]) -> UUID:
    for event in events:
        await read_model.apply(event, evolve)
    return events[0].document_id


@pytest.fixture
async def documents(read_model: SqlReadModel) -> dict[str, UUID]:
    """Tenant t1: six documents a minute apart, in every status; tenant t2: one."""
    uploaded = successful()[:1]
    processing = successful()[:4]
    ids = {
        "completed-1": await apply(read_model, shifted(successful(), 0)),
        "failed": await apply(read_model, shifted(failed_while_extracting(), 1)),
        "processing": await apply(read_model, shifted(processing, 2, document_id=uuid4())),
        "pending": await apply(read_model, shifted(uploaded, 3, document_id=uuid4())),
        "completed-2": await apply(read_model, shifted(successful(), 4)),
        "deleted": await apply(read_model, shifted(successful(), 5)),
        "other-tenant": await apply(read_model, shifted(successful(), 6, tenant_id="t2")),
    }
    await read_model.apply(DocumentDeleted(**envelope(ids["deleted"], 9000)), evolve)
    return ids


async def test_the_list_is_newest_first_and_only_the_callers_visible_documents(
    http: httpx.AsyncClient, documents: dict[str, UUID]
) -> None:
    body = (await http.get("/v1/documents")).json()
    listed = [UUID(d["id"]) for d in body["documents"]]
    expected = ["completed-2", "pending", "processing", "failed", "completed-1"]
    assert listed == [documents[name] for name in expected]
    assert body["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "completed"}, ["completed-2", "completed-1"]),
        ({"status": "failed"}, ["failed"]),
        ({"stage": "extracting"}, ["processing", "failed"]),
        (
            {"created_from": (T0 + timedelta(minutes=2)).isoformat()},
            ["completed-2", "pending", "processing"],
        ),
        ({"created_before": (T0 + timedelta(minutes=2)).isoformat()}, ["failed", "completed-1"]),
        ({"status": "processing", "created_before": T0.isoformat()}, []),
    ],
)
async def test_filters_narrow_the_list(
    http: httpx.AsyncClient, documents: dict[str, UUID], query: dict, expected: list[str]
) -> None:
    body = (await http.get("/v1/documents", params=query)).json()
    assert [UUID(d["id"]) for d in body["documents"]] == [documents[n] for n in expected]


async def test_pages_follow_each_other_with_nothing_lost_or_repeated(
    http: httpx.AsyncClient, documents: dict[str, UUID]
) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await http.get("/v1/documents", params=params)).json()
        seen += [d["id"] for d in body["documents"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    everything = (await http.get("/v1/documents")).json()["documents"]
    assert seen == [d["id"] for d in everything]


@pytest.mark.parametrize(
    "cursor", ["nonsense", "12.34", "1.%s" % ("g" * 32), "9" * 17 + "." + "0" * 32]
)
async def test_a_string_not_of_the_cursors_form_is_a_422_problem(
    http: httpx.AsyncClient, cursor: str
) -> None:
    response = await http.get("/v1/documents", params={"cursor": cursor})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "cursor" in response.json()["detail"]


async def test_any_cursor_of_the_right_form_is_a_position(
    http: httpx.AsyncClient, documents: dict[str, UUID]
) -> None:
    # Before everything: an empty last page. After everything: the whole list.
    for cursor, count in (("0." + "0" * 32, 0), ("9" * 16 + "." + "f" * 32, 5)):
        body = (await http.get("/v1/documents", params={"cursor": cursor})).json()
        assert (len(body["documents"]), body["next_cursor"]) == (count, None)


@pytest.mark.parametrize("when", ["2026-11-22T12:00:00", "1444467", "yesterday"])
async def test_a_time_that_is_not_rfc_3339_with_a_zone_is_refused(
    http: httpx.AsyncClient, when: str
) -> None:
    response = await http.get("/v1/documents", params={"created_from": when})
    assert response.status_code == 422
    assert "created_from" in response.json()["detail"]


async def test_counts_cover_every_status_of_the_callers_visible_documents(
    http: httpx.AsyncClient, documents: dict[str, UUID]
) -> None:
    assert (await http.get("/v1/documents/counts")).json() == {
        "pending": 1,
        "processing": 1,
        "completed": 2,
        "failed": 1,
        "cancelled": 0,
        "total": 5,
    }


async def test_the_timeline_shows_every_stage_of_every_attempt(
    http: httpx.AsyncClient, read_model: SqlReadModel
) -> None:
    d = uuid4()
    first = failed_while_extracting(d)
    retry = retry_of(d, 100)
    second = [
        e.model_copy(
            update={
                "attempt": 2,
                "event_id": uuid4(),
                "occurred_at": e.occurred_at + timedelta(seconds=101),
            }
        )
        for e in successful(d)
        if e.event_type != "docflow.document.uploaded"
    ]
    # Delivered out of order: the timeline is in time order all the same.
    await apply(read_model, [*reversed(second), retry, *first])

    body = (await http.get(f"/v1/documents/{d}/events")).json()
    stages = [(s["stage"], s["attempt"], s["outcome"]) for s in body["stages"]]
    assert stages == [
        ("extracting", 1, "failed"),
        ("extracting", 2, "completed"),
        ("embedding", 2, "completed"),
    ]
    assert body["stages"][0]["error"]["code"] == "encrypted"
    embedding = body["stages"][2]
    assert embedding["duration_s"] == pytest.approx(2.5)  # first to last embedding event
    times = [datetime.fromisoformat(e["occurred_at"]) for e in body["events"]]
    assert times == sorted(times)
    assert len(body["events"]) == len(first) + 1 + len(second)


async def test_another_tenants_timeline_is_a_404(
    http: httpx.AsyncClient, documents: dict[str, UUID]
) -> None:
    for document_id in (documents["other-tenant"], documents["deleted"], uuid4(), "not-a-uuid"):
        response = await http.get(f"/v1/documents/{document_id}/events")
        assert response.status_code == 404
        assert response.json()["code"] == "document-not-found"


def server_sent(text: str) -> list[dict[str, str]]:
    """The events of a text/event-stream body (comments and pings left out)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if fields:
            events.append(fields)
    return events


async def test_the_stream_sends_every_change_and_ends_with_the_document(
    http: httpx.AsyncClient, read_model: SqlReadModel
) -> None:
    events = successful()
    document_id = await apply(read_model, events[:2])

    async def the_rest_of_the_work() -> None:
        for event in events[2:]:
            await asyncio.sleep(0.03)
            await read_model.apply(event, evolve)

    work = asyncio.create_task(the_rest_of_the_work())
    response = await asyncio.wait_for(http.get(f"/v1/documents/{document_id}/stream"), 30)
    await work
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    sent = server_sent(response.text)
    assert {e["event"] for e in sent} == {"status"}
    versions = [int(e["id"]) for e in sent]
    assert versions == sorted(set(versions))
    states = [json.loads(e["data"]) for e in sent]
    progress = [s["progress"] for s in states]
    assert progress == sorted(progress)
    assert len(set(progress)) >= 3, "the stream shows the document advancing"
    assert states[-1]["status"] == "completed"
    assert versions[-1] == len(events)


async def test_a_stream_resumes_after_the_last_event_it_sent(
    http: httpx.AsyncClient, read_model: SqlReadModel
) -> None:
    events = successful()
    document_id = await apply(read_model, events)
    url = f"/v1/documents/{document_id}/stream"
    caught_up = await http.get(url, headers={"Last-Event-ID": str(len(events))})
    assert server_sent(caught_up.text) == []
    behind = server_sent((await http.get(url, headers={"Last-Event-ID": "3"})).text)
    assert [(e["id"], json.loads(e["data"])["status"]) for e in behind] == [
        (str(len(events)), "completed")
    ]


async def test_a_document_deleted_while_streamed_ends_the_stream_saying_so(
    http: httpx.AsyncClient, read_model: SqlReadModel
) -> None:
    events = successful()
    document_id = await apply(read_model, events[:3])

    async def delete() -> None:
        await asyncio.sleep(0.05)
        await read_model.apply(DocumentDeleted(**envelope(document_id, 50)), evolve)

    deleting = asyncio.create_task(delete())
    response = await asyncio.wait_for(http.get(f"/v1/documents/{document_id}/stream"), 30)
    await deleting
    assert [e["event"] for e in server_sent(response.text)] == ["status", "deleted"]


async def test_streaming_another_tenants_document_is_a_404(
    http: httpx.AsyncClient, documents: dict[str, UUID]
) -> None:
    response = await http.get(f"/v1/documents/{documents['other-tenant']}/stream")
    assert response.status_code == 404
    assert response.json()["code"] == "document-not-found"


@pytest.mark.parametrize("garbage", ["²", "٣", "9" * 5000, "99999999999999999999", "-1", "1e9"])
async def test_a_stream_given_a_last_event_id_not_ours_starts_afresh(
    http: httpx.AsyncClient, read_model: SqlReadModel, garbage: str
) -> None:
    events = successful()
    document_id = await apply(read_model, events)
    answer = await http.get(
        f"/v1/documents/{document_id}/stream", headers={"Last-Event-ID": garbage.encode()}
    )
    assert answer.status_code == 200
    sent = server_sent(answer.text)
    assert [json.loads(e["data"])["status"] for e in sent] == ["completed"]


@pytest.mark.parametrize("garbage", [None, "", "²", "9" * 5000, "999999999999999999", "x"])
def test_the_tenant_stream_resumes_afresh_or_from_now_for_an_id_not_ours(
    garbage: str | None,
) -> None:
    now = datetime.now(UTC)
    assert resume_from(garbage, now) in (now - STREAM_LOOKBACK, now)


def test_the_tenant_stream_resumes_from_the_change_it_names() -> None:
    now = datetime.now(UTC)
    earlier = now - timedelta(seconds=30)
    micros = (earlier - datetime.fromtimestamp(0, UTC)) // timedelta(microseconds=1)
    assert resume_from(str(micros), now) == earlier
