"""Hostile HTTP against the running services (issue 20, findings 4 to 6): each probe
of the issue, repeated on a stack with authentication on (tenants acme, globex).

Every loop is bounded in count and time, and talks to 127.0.0.1 only. The
gateway's peak memory under a 300 MiB anonymous JSON body is written to
.artifacts/e2e/adversarial.json.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from docflow_local.stack import Stack
from docflow_shared.auth import hash_key
from support.corpus import REPO_ROOT
from support.stacks import running_stack
from support.waiting import wait_until

ARTIFACTS = REPO_ROOT / ".artifacts" / "e2e"
MiB = 1024 * 1024
ACME = {"Authorization": "Bearer acme-key"}
MAX_STREAMS = 3
HEADER_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("adversarial-http") / "data",
        ARTIFACTS / "logs" / "adversarial-http",
        only=["gateway", "status", "embedder"],
        extra_env={
            "DOCFLOW_AUTH_ENABLED": "true",
            "DOCFLOW_API_KEYS": json.dumps(
                {"acme": [hash_key("acme-key")], "globex": [hash_key("globex-key")]}
            ),
            "DOCFLOW_MAX_STREAMS_PER_TENANT": str(MAX_STREAMS),
            "DOCFLOW_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        },
    ) as running:
        yield running


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    return parts.hostname, parts.port or 80


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


def _send_until_answered(
    url: str, head: bytes, chunk: bytes, total: int, timeout_s: float
) -> tuple[bytes, int]:
    """Send ``head`` then ``chunk`` repeatedly (up to ``total`` bytes) until the server
    answers or closes; the answer's first bytes, and how many body bytes were sent."""
    sent = 0
    with socket.create_connection(_address(url), timeout=timeout_s) as connection:
        connection.sendall(head)
        deadline = time.monotonic() + timeout_s
        while sent < total and time.monotonic() < deadline:
            readable, writable, _ = select.select([connection], [connection], [], 1.0)
            if readable:
                break
            if writable:
                try:
                    sent += connection.send(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break
        connection.settimeout(max(1.0, deadline - time.monotonic()))
        try:
            return connection.recv(4096), sent
        except ConnectionResetError:
            return b"", sent


def test_the_embedders_internal_search_needs_the_internal_token(
    stack: Stack, http: httpx.Client
) -> None:
    url = f"{stack.url('embedder')}/internal/search"
    params = {"q": "invoices", "tenant": "acme"}
    assert http.get(url, params=params).status_code == 401
    assert http.get(url, params=params, headers=ACME).status_code == 401
    wrong = {"X-Docflow-Internal-Token": "not-the-token-but-long-enough"}
    assert http.get(url, params=params, headers=wrong).status_code == 401
    # The gateway holds the token: its search still works.
    found = http.get(f"{stack.url('gateway')}/v1/search", params={"q": "x"}, headers=ACME)
    assert found.status_code == 200, found.text


def test_an_anonymous_300_mib_json_body_is_refused_unread(stack: Stack) -> None:
    gateway = stack.url("gateway")
    before = _peak_rss_bytes(stack.pid("gateway"))
    size = 300 * MiB
    head = (
        f"POST /v1/reindex HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    answer, sent = _send_until_answered(gateway, head, b"[" * MiB, size, timeout_s=30)
    took = time.monotonic() - started
    after = _peak_rss_bytes(stack.pid("gateway"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "adversarial.json").write_text(
        json.dumps(
            {
                "anonymous_json_body_bytes": size,
                "body_bytes_sent_before_the_answer": sent,
                "seconds_to_answer": round(took, 3),
                "gateway_peak_rss_before": before,
                "gateway_peak_rss_after": after,
            },
            indent=2,
        )
    )
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert took < 10
    assert after - before < 32 * MiB, f"peak RSS grew by {(after - before) / MiB:.1f} MiB"


def test_a_32_mib_header_is_refused(stack: Stack) -> None:
    head = b"GET /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
    answer, sent = _send_until_answered(
        stack.url("gateway"), head, b"a" * MiB, 32 * MiB, timeout_s=30
    )
    assert answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), answer[:200]
    assert sent < 32 * MiB


def test_connections_that_never_finish_their_header_are_closed(stack: Stack) -> None:
    address = _address(stack.url("status"))
    connections = []
    try:
        for _ in range(200):
            connection = socket.create_connection(address, timeout=5)
            connection.sendall(b"GET /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            connections.append(connection)
        deadline = time.monotonic() + HEADER_TIMEOUT_S + 15
        open_ = list(connections)
        while open_ and time.monotonic() < deadline:
            readable, _, _ = select.select(open_, [], [], 1.0)
            for connection in readable:
                connection.recv(4096)  # the 408, or the end of the connection
                open_.remove(connection)
        assert open_ == [], f"{len(open_)} of 200 connections still open"
    finally:
        for connection in connections:
            connection.close()
    assert httpx.get(f"{stack.url('status')}/healthz").status_code == 200


def test_streams_over_the_tenants_cap_are_429(stack: Stack) -> None:
    url = f"{stack.url('status')}/v1/documents/stream"
    with httpx.Client(timeout=30) as client, ExitStack() as opened:
        for _ in range(MAX_STREAMS):
            stream = opened.enter_context(client.stream("GET", url, headers=ACME))
            assert stream.status_code == 200
        # Streamed: were it not refused, it would never end.
        with client.stream("GET", url, headers=ACME) as refused:
            assert refused.status_code == 429
            assert refused.headers["retry-after"].isdigit()
        # Another tenant has its own streams.
        with client.stream("GET", url, headers={"X-API-Key": "globex-key"}) as other:
            assert other.status_code == 200

    def a_slot_is_free() -> bool:
        with httpx.Client(timeout=30) as client, client.stream("GET", url, headers=ACME) as again:
            return again.status_code == 200

    wait_until(a_slot_is_free, timeout_s=15, what="the closed streams' slots")


# "²" as one Latin-1 byte (as an HTTP header carries it): a digit to str.isdigit.
@pytest.mark.parametrize("garbage", ["²".encode("latin-1"), b"9" * 5000, b"99999999999999999999"])
def test_a_last_event_id_not_ours_starts_the_stream_afresh(stack: Stack, garbage: bytes) -> None:
    url = f"{stack.url('status')}/v1/documents/stream"
    with (
        httpx.Client(timeout=30) as client,
        client.stream("GET", url, headers={**ACME, "Last-Event-ID": garbage}) as stream,
    ):
        assert stream.status_code == 200


def _cancelled_document(stack: Stack, http: httpx.Client) -> str:
    accepted = http.post(
        f"{stack.url('gateway')}/v1/documents",
        files={"file": ("race.md", f"# race {time.time_ns()}\n".encode())},
        headers=ACME,
    )
    assert accepted.status_code == 202, accepted.text
    document = accepted.json()["documents"][0]
    # No extractor runs here: the document waits, pending, until cancelled.
    wait_until(
        lambda: http.get(document["status_url"], headers=ACME).status_code == 200, timeout_s=30
    )
    cancel = http.post(f"{stack.url('gateway')}/v1/documents/{document['id']}/cancel", headers=ACME)
    assert cancel.status_code == 202, cancel.text
    wait_until(
        lambda: http.get(document["status_url"], headers=ACME).json()["status"] == "cancelled",
        timeout_s=30,
    )
    return str(document["id"])


def test_of_20_concurrent_retries_one_wins_and_the_rest_are_409(
    stack: Stack, http: httpx.Client
) -> None:
    document_id = _cancelled_document(stack, http)
    url = f"{stack.url('gateway')}/v1/documents/{document_id}/retry"

    ready = threading.Barrier(20)

    def retry(_: int) -> int:
        with httpx.Client(timeout=60) as client:
            client.get(f"{stack.url('gateway')}/healthz")  # connected before the race
            ready.wait(timeout=30)
            return client.post(url, headers=ACME).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(retry, range(20)))
    assert answers.count(202) == 1, answers
    assert answers.count(409) == 19, answers


def test_the_web_page_sends_security_headers(stack: Stack, http: httpx.Client) -> None:
    page = http.get(f"{stack.url('gateway')}/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert f"connect-src 'self' {stack.url('status')}" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"


def test_a_client_that_leaves_mid_upload_is_not_a_5xx(stack: Stack, http: httpx.Client) -> None:
    gateway = stack.url("gateway")
    boundary = "leaving"
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="gone.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n%PDF-1.7\n"
    ).encode()
    head = (
        f"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {ACME['Authorization']}"
        f"\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {10 * MiB}\r\n\r\n"
    ).encode()
    with socket.create_connection(_address(gateway), timeout=10) as connection:
        connection.sendall(head + part + b"0" * MiB)
    # The connection is closed with most of the body unsent.

    def disconnect_counted() -> str | None:
        metrics = http.get(f"{gateway}/metrics").text
        return metrics if 'http_client_disconnects_total{method="POST"} 1.0' in metrics else None

    metrics = wait_until(disconnect_counted, timeout_s=30, what="the disconnect in /metrics")
    assert 'status="5xx"' not in metrics
