"""Webhooks through the running system (the services and the webhook dispatcher as
processes on a real Kafka broker): an endpoint registered with the client gets
each document's progress and its completion or failure, signed, verified by a
receiver started here with the client's ``verify_webhook``.

Retries, outages of the receiver, dead letters, re-drive and the private
address refused: tests/integration/test_webhooks.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from docflow_client import Docflow, InvalidSignature, verify_webhook
from docflow_local.stack import Stack
from support.corpus import REPO_ROOT
from support.stacks import running_stack

pytestmark = pytest.mark.e2e

WAIT_S = 180.0


class Received:
    """What the receiver got: verified payloads with their id and arrival time."""

    def __init__(self) -> None:
        self.secret = ""
        self.deliveries: list[tuple[str, dict[str, Any], datetime]] = []
        self.unverified = 0
        self.lock = threading.Lock()

    def of(self, document_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p for _, p, _ in self.deliveries if p["data"]["document_id"] == document_id]

    def until(self, document_id: str, kind: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            found = self.of(document_id)
            if any(p["type"] == kind for p in found):
                return found
            time.sleep(0.2)
        pytest.fail(f"no {kind} webhook for {document_id}: {self.of(document_id)}")


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Received, int]]:
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            arrived = datetime.now(UTC)
            try:
                payload = verify_webhook(received.secret, body, dict(self.headers.items()))
            except InvalidSignature:
                with received.lock:
                    received.unverified += 1
                self.send_response(400)
            else:
                with received.lock:
                    received.deliveries.append((self.headers["webhook-id"], payload, arrived))
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received, server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("webhooks") / "data",
        REPO_ROOT / ".artifacts" / "e2e" / "logs" / "webhooks",
        only=["gateway", "status", "extractor", "embedder", "webhooks"],
    ) as running:
        yield running


def test_an_endpoint_gets_progress_and_the_outcome_signed_and_verified(
    stack: Stack, receiver: tuple[Received, int]
) -> None:
    received, port = receiver
    with Docflow(stack.url("gateway"), stack.url("status")) as client:
        endpoint = client.create_webhook(
            f"http://127.0.0.1:{port}/docflow",
            events=["completed", "failed", "progress"],
        )
        received.secret = endpoint.secret
        good, broken = client.upload(
            ("glaciers.txt", b"Glaciers retreat when summers melt more ice than winters bring.\n"),
            ("broken.pdf", b"%PDF-1.4\n this is not a PDF at all\n%%EOF\n"),
        )
        done = received.until(str(good.id), "document.completed")
        failed = received.until(str(broken.id), "document.failed")
        deliveries = client.webhook_deliveries(endpoint.id, limit=100).deliveries
    assert received.unverified == 0
    # Progress first, the outcome last, each status change once.
    assert done[-1]["type"] == "document.completed"
    assert {p["type"] for p in done[:-1]} <= {"document.progress"}
    assert done[-1]["data"]["status"] == "completed"
    assert done[-1]["data"]["chunks_total"] == done[-1]["data"]["chunks_embedded"] >= 1
    versions = [p["data"]["version"] for p in done if p["type"] == "document.progress"]
    assert versions == sorted(set(versions))
    assert failed[-1]["data"]["error"]["code"] == "corrupt"
    ids = [wid for wid, _, _ in received.deliveries]
    assert len(ids) == len(set(ids))
    ours = {d.webhook_id: d for d in deliveries}
    assert set(ids) <= set(ours)
    assert {ours[i].state for i in ids} == {"delivered"}


def docflow(stack: Stack, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "docflow"), "webhooks", *arguments],
        env={**os.environ, "DOCFLOW_GATEWAY_URL": stack.url("gateway")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_command_line_manages_endpoints(stack: Stack) -> None:
    added = docflow(stack, "add", "http://127.0.0.1:9/cli", "--event", "failed", "--json")
    assert added.returncode == 0, added.stderr
    made = json.loads(added.stdout)
    assert made["secret"].startswith("whsec_")
    assert made["events"] == ["failed"]
    listed = docflow(stack, "list", "--json")
    assert made["id"] in [w["id"] for w in json.loads(listed.stdout)]
    assert "secret" not in listed.stdout
    shown = docflow(stack, "deliveries", made["id"], "--json")
    assert (shown.returncode, json.loads(shown.stdout)) == (0, [])
    rotated = docflow(stack, "rotate", made["id"], "--json")
    assert rotated.returncode == 0, rotated.stderr
    assert json.loads(rotated.stdout)["secret"] not in ("", made["secret"])
    assert json.loads(rotated.stdout)["secret"].startswith("whsec_")
    in_text = docflow(stack, "rotate", made["id"])
    assert "the old secret still signs deliveries until" in in_text.stdout
    unknown = docflow(stack, "redrive", made["id"], str(uuid4()))
    assert unknown.returncode == 2
    assert "no delivery" in unknown.stderr
    refused = docflow(stack, "add", "http://169.254.169.254/latest")
    assert refused.returncode == 2
    assert "webhook-url-refused" in refused.stderr
    assert "not a public address" in refused.stderr
    assert docflow(stack, "remove", made["id"]).returncode == 0
    assert made["id"] not in docflow(stack, "list", "--json").stdout
