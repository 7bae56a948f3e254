"""RequestGuard: the caller is authenticated, and the body limited, before a route
reads a byte of the body (issue 20, finding 5)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest

from docflow_shared.auth import Authenticator, hash_key
from docflow_shared.guards import TENANT_KEY, RequestGuard

AUTH = Authenticator(enabled=True, default_tenant="default", keys={"acme": [hash_key("acme-key")]})
LIMIT = 1024


class App:
    """Records what reached it: the scope and the body it read."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.calls.append((scope, body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


class Client:
    """One request through the guard; counts the body messages it hands out."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = list(chunks)
        self.received = 0
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        self.received += 1
        if not self.chunks:
            return {"type": "http.disconnect"}
        chunk = self.chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.sent[1]["body"])
        return body


def scope(path: str = "/v1/reindex", method: str = "POST", **headers: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


async def run(
    request_scope: dict[str, Any], chunks: Iterable[bytes], streamed: Iterable[Any] = ()
) -> tuple[App, Client]:
    app, client = App(), Client(chunks)
    guard = RequestGuard(app, authenticator=AUTH, max_body_bytes=LIMIT, streamed_bodies=streamed)
    await guard(request_scope, client.receive, client.send)
    return app, client


@pytest.mark.parametrize("headers", [{}, {"x_api_key": "wrong"}, {"authorization": "Basic x"}])
async def test_an_anonymous_request_is_refused_before_its_body_is_read(
    headers: dict[str, str],
) -> None:
    app, client = await run(scope(content_length=str(300 << 20), **headers), [b"{" * 4096] * 9)
    assert client.status == 401
    assert client.problem["code"] == "unauthorized"
    assert client.received == 0
    assert app.calls == []


async def test_a_declared_body_over_the_limit_is_refused_unread() -> None:
    app, client = await run(scope(x_api_key="acme-key", content_length=str(LIMIT + 1)), [b"x"])
    assert (client.status, client.problem["code"]) == (413, "body-too-large")
    assert client.received == 0
    assert app.calls == []


async def test_a_streamed_body_is_refused_once_it_passes_the_limit() -> None:
    app, client = await run(scope(x_api_key="acme-key"), [b"x" * 600] * 100)
    assert client.status == 413
    assert client.received == 2  # stopped at the chunk that crossed the limit
    assert app.calls == []


async def test_a_body_within_the_limit_reaches_the_route_with_the_tenant() -> None:
    app, client = await run(scope(x_api_key="acme-key"), [b'{"a":', b" 1}"])
    assert client.status == 200
    [(seen, body)] = app.calls
    assert body == b'{"a": 1}'
    assert seen[TENANT_KEY] == "acme"


async def test_a_streamed_route_reads_its_own_body_without_the_limit() -> None:
    upload = ("POST", "/v1/documents")
    app, client = await run(
        scope("/v1/documents", x_api_key="acme-key"), [b"x" * 800] * 4, streamed=[upload]
    )
    assert client.status == 200
    assert len(app.calls[0][1]) == 3200


async def test_public_paths_pass_without_a_key() -> None:
    for path in ("/", "/healthz", "/openapi.json", "/web/page.js"):
        app, client = await run(scope(path, method="GET"), [b""])
        assert len(app.calls) == 1
        assert client.status == 200


async def test_a_body_that_is_not_utf8_is_a_malformed_request() -> None:
    # FastAPI answers such a JSON body with a 400 its OpenAPI document does not
    # name (Schemathesis found it on POST /v1/deadletters/redrive).
    app, client = await run(scope(x_api_key="acme-key"), [b"H\xe3\x81L"])
    assert (client.status, client.problem["code"]) == (422, "malformed-request")
    assert app.calls == []


def closes(client: Client) -> bool:
    return (b"connection", b"close") in client.sent[0].get("headers", [])


async def test_an_answer_before_the_body_is_read_closes_the_connection() -> None:
    """The server drops such a connection; the header tells the client not to send
    its next request on it (it saw "server disconnected" under load)."""
    _, anonymous = await run(scope(content_length="4096"), [b"{" * 4096])
    _, too_large = await run(scope(x_api_key="acme-key", content_length=str(LIMIT + 1)), [b"x"])
    chunked = scope(x_api_key="acme-key", transfer_encoding="chunked")
    _, streamed = await run(chunked, [b"x" * 600] * 100)
    assert [closes(c) for c in (anonymous, too_large, streamed)] == [True, True, True]


async def test_an_answer_after_the_body_is_read_keeps_the_connection() -> None:
    _, posted = await run(scope(x_api_key="acme-key", content_length="8"), [b'{"a": 1}'])
    _, got = await run(scope("/v1/documents", method="GET", x_api_key="acme-key"), [b""])
    assert (posted.status, got.status) == (200, 200)
    assert [closes(c) for c in (posted, got)] == [False, False]
