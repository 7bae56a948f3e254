from __future__ import annotations

from functools import reduce
from typing import Any
from uuid import UUID, uuid4

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from docflow_shared.auth import hash_key
from docflow_status.domain.projection import DocumentState, evolve
from docflow_status.entrypoints.app import StatusApi, create_app
from docflow_status.settings import StatusSettings
from support.histories import successful


class Documents:
    def __init__(self, *states: DocumentState) -> None:
        self.states = {(s.id, s.tenant_id): s for s in states}

    async def get(self, document_id: UUID, tenant_id: str) -> DocumentState | None:
        return self.states.get((document_id, tenant_id))


def client(*states: DocumentState, **settings: Any) -> TestClient:
    api = StatusApi(
        settings=StatusSettings(**{"default_tenant": "t1", **settings}),
        documents=Documents(*states),
        checks={},
        registry=CollectorRegistry(),
    )
    return TestClient(create_app(api))


def test_a_document_has_every_field_of_the_contract() -> None:
    state = reduce(evolve, successful(), None)
    body = client(state).get(f"/v1/documents/{state.id}").json()
    assert set(body) == {
        "id",
        "filename",
        "status",
        "stage",
        "progress",
        "message",
        "pages",
        "chunks_total",
        "chunks_embedded",
        "error",
        "created_at",
        "started_at",
        "completed_at",
        "updated_at",
        "attempt",
        "stalled",
        "retries",
        "metadata",
    }
    assert body["status"] == "completed"
    assert body["stage"] == "indexed"
    assert body["progress"] == 100
    assert body["created_at"].startswith("2026-11-22T12:00:00")


def test_an_unknown_id_is_a_404_problem() -> None:
    for document_id in (str(uuid4()), "not-a-uuid"):
        response = client().get(f"/v1/documents/{document_id}")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "document-not-found"


def test_another_tenants_document_is_a_404() -> None:
    events = successful()
    state = reduce(evolve, events, None)
    other = DocumentState(id=state.id, tenant_id="t2")
    assert client(other).get(f"/v1/documents/{state.id}").status_code == 404


def test_with_auth_on_a_document_is_seen_only_with_its_tenants_key() -> None:
    state = reduce(evolve, successful(), None)
    keys = {"t1": [hash_key("key-1")], "t2": [hash_key("key-2")]}
    api = client(state, auth_enabled=True, api_keys=keys)
    url = f"/v1/documents/{state.id}"

    assert api.get(url).status_code == 401
    assert api.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert api.get(url, headers={"Authorization": "Bearer key-1"}).status_code == 200
    other = api.get(url, headers={"X-API-Key": "key-2"})
    assert other.status_code == 404
    assert other.json()["code"] == "document-not-found"


def test_the_gateways_page_may_read_statuses_with_a_key_and_other_sites_may_not() -> None:
    state = reduce(evolve, successful(), None)
    api = client(state, cors_origins=["http://127.0.0.1:8000"])
    url = f"/v1/documents/{state.id}"
    preflight = api.options(
        url,
        headers={
            "Origin": "http://127.0.0.1:8000",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-api-key, last-event-id",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://127.0.0.1:8000"
    read = api.get(url, headers={"Origin": "http://127.0.0.1:8000"})
    assert read.headers["access-control-allow-origin"] == "http://127.0.0.1:8000"

    elsewhere = api.get(url, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in elsewhere.headers
    refused = api.options(
        url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert refused.status_code == 400
