"""POST /v1/reindex on the gateway: who may ask, what is checked, what is published.

What the embedder then does is in tests/unit/embedder/test_reindex.py and, on
the running system, tests/e2e/test_reindex.py.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4

from docflow_shared.auth import hash_key
from docflow_shared.events import EmbeddingSpec, ReindexRequested
from support.gateway import ClientFor, Recorder

KEYS = {"ops": [hash_key("ops-key")], "acme": [hash_key("acme-key")]}
BODY = {"embedding": {"backend": "openai", "model": "text-embedding-3-small"}}


def test_a_request_is_published_and_answered_with_its_status_link(
    tmp_path: Path, client_for: ClientFor
) -> None:
    recorder = Recorder()
    client = client_for(tmp_path / "blobs", recorder)
    chosen = [str(uuid4()), str(uuid4())]
    response = client.post(
        "/v1/reindex",
        json={**BODY, "document_ids": chosen},
        headers={"X-Correlation-Id": "ops-ticket-7"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    [event] = recorder.events
    assert isinstance(event, ReindexRequested)
    assert body["reindex_id"] == str(event.reindex_id)
    assert body["status_url"] == f"http://status.example:8001/v1/reindex/{event.reindex_id}"
    assert event.embedding == EmbeddingSpec(backend="openai", model="text-embedding-3-small")
    assert event.document_ids == [UUID(d) for d in chosen]
    assert event.tenant_id == "default"
    assert event.correlation_id == "ops-ticket-7"


def test_with_auth_on_only_admin_tenants_may_ask(tmp_path: Path, client_for: ClientFor) -> None:
    recorder = Recorder()
    client = client_for(
        tmp_path / "blobs", recorder, auth_enabled=True, api_keys=KEYS, admin_tenants=["ops"]
    )
    refused = client.post("/v1/reindex", json=BODY, headers={"X-API-Key": "acme-key"})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "DOCFLOW_ADMIN_TENANTS" in refused.json()["detail"]
    assert client.post("/v1/reindex", json=BODY).status_code == 401
    assert recorder.events == []
    accepted = client.post("/v1/reindex", json=BODY, headers={"X-API-Key": "ops-key"})
    assert accepted.status_code == 202
    assert [e.tenant_id for e in recorder.events] == ["ops"]


def test_a_malformed_request_is_a_422_and_publishes_nothing(
    tmp_path: Path, client_for: ClientFor
) -> None:
    recorder = Recorder()
    client = client_for(tmp_path / "blobs", recorder)
    for body in (
        {},
        {"embedding": {"backend": "cohere", "model": "x"}},
        {"embedding": {"backend": "openai", "model": ""}},
        {**BODY, "document_ids": []},
        {**BODY, "document_ids": ["not-a-uuid"]},
        {**BODY, "collection": "mine"},
    ):
        response = client.post("/v1/reindex", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
    not_json = client.post(
        "/v1/reindex", content=b"\xff\xfe{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422
    assert not_json.headers["content-type"] == "application/problem+json"
    assert not_json.json()["code"] == "malformed-request"
    assert recorder.events == []


def test_kafka_unavailable_is_a_503_with_retry_after(tmp_path: Path, client_for: ClientFor) -> None:
    client = client_for(tmp_path / "blobs", Recorder(fail=True))
    response = client.post("/v1/reindex", json=BODY)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
