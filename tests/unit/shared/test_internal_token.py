"""The internal token: the embedder's /internal/search answers only the gateway
(issue 20, finding 4), and the gateway's search client sends it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from docflow_embedder.entrypoints.http import search_route
from docflow_gateway.adapters.search_client import HttpSearch
from docflow_shared.auth import INTERNAL_TOKEN_HEADER, internal_token_valid

TOKEN = "a-token-of-at-least-16-characters"


class NoIndex:
    """An index the refused requests must never reach."""

    def targets(self) -> Any:
        raise AssertionError("a request without the internal token reached the index")


def test_a_token_is_valid_only_when_one_is_configured_and_it_matches() -> None:
    assert internal_token_valid(TOKEN, TOKEN)
    assert not internal_token_valid(TOKEN, TOKEN + "x")
    assert not internal_token_valid(TOKEN, None)
    assert not internal_token_valid(None, TOKEN)
    assert not internal_token_valid("", "")


@pytest.mark.parametrize(
    ("configured", "headers"),
    [
        (TOKEN, {}),
        (TOKEN, {INTERNAL_TOKEN_HEADER: "wrong-token-of-the-same-size-xx"}),
        (TOKEN, {"X-API-Key": TOKEN}),
        (None, {INTERNAL_TOKEN_HEADER: TOKEN}),
    ],
)
async def test_search_without_the_internal_token_is_refused_before_any_search(
    configured: str | None, headers: dict[str, str]
) -> None:
    route = search_route(NoIndex(), configured)[1]  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=route)
    async with httpx.AsyncClient(transport=transport, base_url="http://embedder") as http:
        answer = await http.get(
            "/internal/search", params={"q": "invoices", "tenant": "acme"}, headers=headers
        )
    assert answer.status_code == 401
    assert INTERNAL_TOKEN_HEADER in answer.json()["detail"]


async def test_the_gateway_search_client_sends_the_internal_token() -> None:
    seen: list[httpx.Request] = []

    def embedder(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"model": "m", "collection": "c", "hits": []})

    async with httpx.AsyncClient(transport=httpx.MockTransport(embedder)) as client:
        await HttpSearch(client, "http://embedder:8003", TOKEN)("q", "acme", 3)
    assert seen[0].headers[INTERNAL_TOKEN_HEADER] == TOKEN
    assert seen[0].url.params["tenant"] == "acme"
