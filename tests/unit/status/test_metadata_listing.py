"""An upload's metadata in the status API, and the document list filtered by metadata,
name and id, on the real read model (SQLite, and PostgreSQL marked integration)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from prometheus_client import CollectorRegistry

from docflow_shared.events import DocumentUploaded, Event
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.domain.projection import evolve
from docflow_status.entrypoints.app import StatusApi, create_app
from docflow_status.handlers import snapshot
from docflow_status.settings import StatusSettings
from support.histories import successful

from .test_queries_api import shifted


@pytest.fixture
async def http(read_model: SqlReadModel) -> AsyncIterator[httpx.AsyncClient]:
    api = StatusApi(
        settings=StatusSettings(default_tenant="t1"),
        documents=read_model,
        checks={},
        registry=CollectorRegistry(),
    )
    transport = httpx.ASGITransport(app=create_app(api))
    async with httpx.AsyncClient(transport=transport, base_url="http://status") as client:
        yield client


def _with(events: list[Event], **upload: Any) -> list[Event]:
    return [e.model_copy(update=upload) if isinstance(e, DocumentUploaded) else e for e in events]


async def _add(
    read_model: SqlReadModel, minutes: int, metadata: dict[str, Any] | None, **update: Any
) -> UUID:
    events = _with(shifted(successful(), minutes, document_id=uuid4(), **update), metadata=metadata)
    for event in events:
        await read_model.apply(event, evolve)
    return events[0].document_id


@pytest.fixture
async def documents(read_model: SqlReadModel) -> dict[str, UUID]:
    return {
        "red": await _add(read_model, 0, {"team": "red", "year": 2024, "tags": ["a", "b%"]}),
        "blue": await _add(read_model, 1, {"team": "blue", "year": 2025}),
        "none": await _add(read_model, 2, None),
        # Like-patterns in a value are matched as text, not as patterns.
        "pattern": await _add(read_model, 3, {"team": "r_d"}),
        "theirs": await _add(read_model, 4, {"team": "red", "year": 2024}, tenant_id="t2"),
    }


async def _listed(http: httpx.AsyncClient, params: list[tuple[str, str]]) -> set[UUID]:
    response = await http.get("/v1/documents", params=params)
    assert response.status_code == 200, response.text
    return {UUID(d["id"]) for d in response.json()["documents"]}


async def test_the_status_shows_the_metadata(
    http: httpx.AsyncClient, documents: dict[str, UUID], read_model: SqlReadModel
) -> None:
    body = (await http.get(f"/v1/documents/{documents['red']}")).json()
    assert body["metadata"] == {"team": "red", "year": 2024, "tags": ["a", "b%"]}
    assert (await http.get(f"/v1/documents/{documents['none']}")).json()["metadata"] is None
    # And the status topic's snapshot.
    state = await read_model.get(documents["red"], "t1")
    assert state is not None
    assert snapshot(state, 1, "c").metadata == body["metadata"]


async def test_the_list_filters_by_metadata(
    http: httpx.AsyncClient, documents: dict[str, UUID]
) -> None:
    red, blue, pattern = documents["red"], documents["blue"], documents["pattern"]
    assert await _listed(http, []) == {red, blue, documents["none"], pattern}
    assert await _listed(http, [("meta", "team=red")]) == {red}
    assert await _listed(http, [("meta", "team=red"), ("meta", "team=blue")]) == {red, blue}
    assert await _listed(http, [("meta", "team=red"), ("meta", "year=2025")]) == set()
    assert await _listed(http, [("meta", "year=2024")]) == {red}
    assert await _listed(http, [("meta", "tags=b%")]) == {red}
    assert await _listed(http, [("meta", "tags=b")]) == set()
    assert await _listed(http, [("meta", "team=r_d")]) == {pattern}
    # A prefix of a term is not the term.
    assert await _listed(http, [("meta", "team=re")]) == set()
    # The listing's own filters go with them.
    both = [("meta", "team=red"), ("status", "completed")]
    assert await _listed(http, both) == {red}


async def test_the_list_filters_by_name_and_id_within_the_tenant(
    http: httpx.AsyncClient, documents: dict[str, UUID]
) -> None:
    red, blue = documents["red"], documents["blue"]
    assert await _listed(http, [("document_id", str(red)), ("document_id", str(blue))]) == {
        red,
        blue,
    }
    # Another tenant's document, by id or by its metadata: not listed.
    assert await _listed(http, [("document_id", str(documents["theirs"]))]) == set()
    filename = (await http.get(f"/v1/documents/{red}")).json()["filename"]
    assert await _listed(http, [("filename", filename)]) == {
        red,
        blue,
        documents["none"],
        documents["pattern"],
    }
    assert await _listed(http, [("filename", "no-such-name.pdf")]) == set()


@pytest.mark.parametrize(
    "params",
    [[("meta", "no-equals")], [("meta", "bad key=1")], [("document_id", "nope")]],
)
async def test_a_malformed_filter_is_422(
    http: httpx.AsyncClient, params: list[tuple[str, str]]
) -> None:
    response = await http.get("/v1/documents", params=params)
    assert response.status_code == 422
