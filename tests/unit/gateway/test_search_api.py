"""GET /v1/search on the gateway: the caller's tenant, names from the gateway's
records, problems for bad queries and an absent embedder.

The embedder's side (embedding the query, Qdrant) runs for real in
tests/service/test_embedder_wiring.py and on the corpus in tests/e2e.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi.testclient import TestClient

from docflow_gateway.adapters.search_client import HttpSearch, SearchOptions
from docflow_shared.auth import hash_key
from support.gateway import PDF, ClientFor, Recorder, Searches

KEYS = {"acme": [hash_key("acme-key")], "globex": [hash_key("globex-key")]}
ACME = {"X-API-Key": "acme-key"}


def hit(document_id: UUID | str, score: float, text: str = "some text") -> dict[str, Any]:
    return {
        "document_id": str(document_id),
        "chunk_index": 3,
        "page": 2,
        "page_end": 2,
        "score": score,
        "text": text,
    }


@pytest.fixture
def setup(tmp_path: Path, client_for: ClientFor) -> tuple[TestClient, Searches]:
    searches = Searches()
    client = client_for(
        tmp_path / "blobs", Recorder(), searches=searches, auth_enabled=True, api_keys=KEYS
    )
    return client, searches


def test_results_name_the_document_and_come_best_first(
    setup: tuple[TestClient, Searches],
) -> None:
    client, searches = setup
    answer = client.post("/v1/documents", files={"file": ("report.pdf", PDF)}, headers=ACME)
    document_id = answer.json()["documents"][0]["id"]
    searches.hits = [hit(document_id, 0.9, "best"), hit(document_id, 0.5, "second")]

    response = client.get("/v1/search", params={"q": "what is it about", "limit": 5}, headers=ACME)

    assert response.status_code == 200
    body = response.json()
    assert (body["query"], body["model"]) == ("what is it about", "test-model")
    assert [(r["filename"], r["text"], r["page"]) for r in body["results"]] == [
        ("report.pdf", "best", 2),
        ("report.pdf", "second", 2),
    ]
    # The embedder was asked for the caller's tenant only.
    assert searches.calls == [("what is it about", "acme", 5)]
    # Hybrid unless asked otherwise.
    assert body["mode"] == "hybrid"
    assert searches.modes == ["hybrid"]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_the_mode_is_passed_to_the_embedder_and_reported(
    setup: tuple[TestClient, Searches], mode: str
) -> None:
    client, searches = setup
    response = client.get("/v1/search", params={"q": "XK-4471", "mode": mode}, headers=ACME)
    assert response.status_code == 200
    assert response.json()["mode"] == mode
    assert response.json()["note"] is None
    assert searches.modes == [mode]


def test_a_document_the_gateway_no_longer_knows_is_left_out(
    setup: tuple[TestClient, Searches],
) -> None:
    client, searches = setup
    # Vectors of a document deleted a moment ago (or another tenant's, which
    # the embedder never returns): no record for this tenant, no result.
    searches.hits = [hit(uuid4(), 0.9)]
    response = client.get("/v1/search", params={"q": "anything"}, headers=ACME)
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 2001},
        {"q": "ok", "limit": 0},
        {"q": "ok", "limit": 51},
        {"q": "ok", "mode": "semantic"},
        {"q": "ok", "mode": ""},
        {},
    ],
)
def test_a_bad_query_is_a_422_problem(
    setup: tuple[TestClient, Searches], params: dict[str, Any]
) -> None:
    client, searches = setup
    response = client.get("/v1/search", params=params, headers=ACME)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert searches.calls == []


def test_keywords_on_a_collection_made_before_are_a_409_problem(
    setup: tuple[TestClient, Searches],
) -> None:
    client, searches = setup
    searches.without_keywords = True
    response = client.get("/v1/search", params={"q": "x", "mode": "keyword"}, headers=ACME)
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:docflow:problem:keywords-missing"
    assert "re-embed" in response.json()["detail"]


def test_without_the_embedder_search_is_a_503_with_retry_after(
    setup: tuple[TestClient, Searches],
) -> None:
    client, searches = setup
    searches.down = True
    response = client.get("/v1/search", params={"q": "anything"}, headers=ACME)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "search" in response.json()["detail"]


def test_search_needs_an_api_key_when_auth_is_on(setup: tuple[TestClient, Searches]) -> None:
    client, _ = setup
    assert client.get("/v1/search", params={"q": "anything"}).status_code == 401


async def test_filters_travel_as_parameters_that_cannot_name_another_tenant() -> None:
    asked: list[httpx.URL] = []

    def embedder(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        return httpx.Response(200, json={"model": "m", "collection": "c", "hits": []})

    async with httpx.AsyncClient(transport=httpx.MockTransport(embedder)) as client:
        search = HttpSearch(client, "http://embedder", "token")
        options = SearchOptions(
            meta=("team=red&tenant=globex", "x=1"), filenames=("a.pdf",), group="document"
        )
        await search("q", "acme", 5, mode="keyword", options=options)
    params = asked[0].params
    assert params.get_list("tenant") == ["acme"]
    assert params.get_list("mode") == ["keyword"]
    assert params.get_list("meta") == ["team=red&tenant=globex", "x=1"]
    assert (params["filename"], params["group"], params["group_size"]) == ("a.pdf", "document", "3")


def test_filters_and_group_are_checked_and_passed_on(setup: tuple[TestClient, Searches]) -> None:
    client, searches = setup
    bad = client.get("/v1/search", params={"q": "x", "meta": "no-equals"}, headers=ACME)
    assert bad.status_code == 422
    assert "query.meta" in bad.json()["detail"]
    assert (
        client.get("/v1/search", params={"q": "x", "group": "page"}, headers=ACME).status_code
        == 422
    )
    late = client.get(
        "/v1/search", params={"q": "x", "created_from": "2026-01-01T00:00:00"}, headers=ACME
    )
    assert late.status_code == 422  # a time without a zone
    ok = client.get(
        "/v1/search",
        params=[("q", "x"), ("meta", "a=1"), ("meta", "b=2"), ("filename", "f.pdf")],
        headers=ACME,
    )
    assert ok.status_code == 200
    [options] = searches.options
    assert (options.meta, options.filenames, options.group) == (("a=1", "b=2"), ("f.pdf",), None)
    # Always the caller's tenant.
    assert searches.calls[-1][1] == "acme"
    # With a mode and by document: both reach the embedder, and the answer says both.
    grouped = client.get(
        "/v1/search",
        params={"q": "x", "mode": "keyword", "meta": "a=1", "group": "document"},
        headers=ACME,
    )
    assert grouped.status_code == 200
    assert (grouped.json()["mode"], grouped.json()["documents"]) == ("keyword", [])
    assert searches.modes[-1] == "keyword"
    assert (searches.options[-1].meta, searches.options[-1].group) == (("a=1",), "document")
