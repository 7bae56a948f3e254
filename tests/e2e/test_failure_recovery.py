"""An embeddings endpoint that is down: retries, the dead-letter topic and a failed
document with its reason; then, once it is back, a re-drive by the CLI brings the
document to completed. The four services as processes on a real Kafka broker,
the embedder on an OpenAI-compatible test server (tests/support/openai_server.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from docflow_local.stack import Stack
from support.corpus import REPO_ROOT, expectations
from support.openai_server import EmbeddingsServer
from support.stacks import running_stack
from support.waiting import wait_until

MARKDOWN = "004_2fa5e17c5a412ea5.md"


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, server: EmbeddingsServer
) -> Iterator[Stack]:
    with running_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("recovery") / "data",
        REPO_ROOT / ".artifacts" / "e2e" / "logs" / "recovery",
        extra_env={
            **server.embedder_env(),
            # The client's own retries off: each call fails at once, so the
            # retry topics do the waiting.
            "DOCFLOW_OPENAI_MAX_RETRIES": "0",
            "DOCFLOW_RETRY_DELAYS_S": "[0.5, 1, 1]",
        },
    ) as running:
        yield running


def _status(http: httpx.Client, url: str, done: Any) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        response = http.get(url)
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 and done(body) else None

    return wait_until(probe, timeout_s=120, interval_s=0.2, what=url)


def test_a_document_that_outlasts_its_retries_fails_and_is_redriven_once_fixed(
    stack: Stack, http: httpx.Client, server: EmbeddingsServer
) -> None:
    server.script[:] = ["500"] * 10_000  # the endpoint is down
    path = next(e.path for e in expectations() if e.path.name == MARKDOWN)
    answer = http.post(
        f"{stack.url('gateway')}/v1/documents", files={"file": (path.name, path.read_bytes())}
    )
    assert answer.status_code == 202, answer.text
    [document] = answer.json()["documents"]

    failed = _status(http, document["status_url"], lambda s: s["status"] == "failed")
    assert failed["retries"] == 3
    assert failed["stage"] == "embedding"
    assert failed["error"]["retryable"] is True
    assert failed["error"]["message"].startswith("the embeddings API answered 500")
    assert failed["error"]["message"].endswith("(gave up after 3 retries)")
    timeline = http.get(f"{document['status_url']}/events").json()["events"]
    types = [e["event_type"] for e in timeline]
    # Three retries of each chunk batch. Delivery is at least once: an upload read
    # again after a consumer-group rebalance is extracted again, and each copy of
    # its batch goes through its own three retries.
    assert types.count("docflow.document.extracted") >= 1
    assert types.count("docflow.document.retrying") == 3 * types.count("docflow.document.extracted")

    letters = http.get(f"{stack.url('gateway')}/v1/deadletters").json()["dead_letters"]
    mine = [d for d in letters if d["document_id"] == document["id"]]
    assert mine
    assert {(d["service"], d["stage"], d["retries"]) for d in mine} == {
        ("embedder", "embedding", 3)
    }

    server.script.clear()  # the endpoint is back
    redrive = subprocess.run(
        [
            sys.executable,
            "-m",
            "docflow_gateway",
            "redrive",
            "--json",
            "--document",
            document["id"],
        ],
        env={**os.environ, "DOCFLOW_GATEWAY_URL": stack.url("gateway")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert redrive.returncode == 0, redrive.stderr
    result = json.loads(redrive.stdout)
    assert [(r["id"], r["attempt"]) for r in result["retried"]] == [(document["id"], 2)]

    completed = _status(http, document["status_url"], lambda s: s["status"] == "completed")
    assert (completed["attempt"], completed["retries"], completed["error"]) == (2, 0, None)
    assert completed["chunks_embedded"] == completed["chunks_total"] >= 1
    # A second re-drive finds nothing left to do.
    again = http.post(
        f"{stack.url('gateway')}/v1/deadletters/redrive", json={"document_ids": [document["id"]]}
    ).json()
    assert again["retried"] == []
    assert "completed" in again["skipped"][0]["reason"]
