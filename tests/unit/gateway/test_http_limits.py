"""The gateway's HTTP limits as a client meets them (issue 20, findings 5 and 6):
authentication before the body, a body limit on JSON routes, the page's
security headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docflow_shared.auth import hash_key
from support.gateway import PDF, ClientFor, Recorder, files_in

KEYS = {"ops": [hash_key("ops-key")]}
OPS = {"X-API-Key": "ops-key"}


def test_an_anonymous_json_body_is_answered_401_not_parsed(
    blob_root: Path, client_for: ClientFor
) -> None:
    client = client_for(blob_root, Recorder(), auth_enabled=True, api_keys=KEYS)
    # Malformed on purpose: parsed, it would be a 422.
    answer = client.post(
        "/v1/reindex", content=b"[" * 4096, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_json_body_over_the_limit_is_413(blob_root: Path, client_for: ClientFor) -> None:
    client = client_for(
        blob_root, Recorder(), auth_enabled=True, api_keys=KEYS, max_json_bytes=4096
    )
    answer = client.post(
        "/v1/reindex",
        content=b" " * 5000 + b"{}",
        headers={**OPS, "Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.json()["code"] == "body-too-large"


def test_uploads_are_not_held_to_the_json_limit(blob_root: Path, client_for: ClientFor) -> None:
    client = client_for(
        blob_root, Recorder(), auth_enabled=True, api_keys=KEYS, max_json_bytes=4096
    )
    big = PDF + b"%" * 10_000 + b"\n"
    answer = client.post("/v1/documents", files={"file": ("big.pdf", big)}, headers=OPS)
    assert answer.status_code == 202, answer.text


def test_the_page_sends_its_security_headers(blob_root: Path, client_for: ClientFor) -> None:
    client = client_for(blob_root, Recorder())
    page = client.get("/")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "connect-src 'self' http://status.example:8001" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    for path in ("/", "/web/app.js", "/web/style.css"):
        assert client.get(path).headers["x-content-type-options"] == "nosniff"


def test_a_client_that_leaves_mid_upload_is_499_not_a_5xx(
    blob_root: Path, client_for: ClientFor
) -> None:
    client = client_for(blob_root, Recorder())
    boundary = "b0undary"
    chunks = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n".encode(),
        PDF + b"%" * 65536,
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if chunks:
            return {"type": "http.request", "body": chunks.pop(0), "more_body": True}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/documents",
        "raw_path": b"/v1/documents",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"gateway"),
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    assert client.portal is not None
    client.portal.call(client.app, scope, receive, send)

    assert sent[0]["status"] == 499
    metrics = client.get("/metrics").text
    assert 'status="5xx"' not in metrics
    assert 'http_client_disconnects_total{method="POST"} 1.0' in metrics
    assert files_in(blob_root) == []


def test_a_client_that_leaves_before_its_json_body_is_499(
    blob_root: Path, client_for: ClientFor
) -> None:
    client = client_for(blob_root, Recorder())
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/reindex",
        "headers": [(b"content-type", b"application/json")],
    }
    assert client.portal is not None
    client.portal.call(client.app, scope, receive, send)
    assert sent[0]["status"] == 499
    assert 'status="5xx"' not in client.get("/metrics").text
