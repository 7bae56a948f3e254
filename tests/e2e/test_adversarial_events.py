"""Forged events on the real system (issue 20): whoever can publish to Kafka tries to
read another tenant's document, and to delete one. The four services run as
processes on a real broker, with authentication on and tenants acme and globex;
the forged events are published straight to the topics, as an attacker inside
the network would.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from docflow_local.stack import Stack
from docflow_shared.auth import hash_key
from docflow_shared.events import DocumentDeleted, DocumentRetryRequested, Event, Stage
from docflow_shared.messaging import make_broker
from support.corpus import REPO_ROOT
from support.stacks import running_stack
from support.waiting import wait_until

ACME = {"Authorization": "Bearer acme-key"}
GLOBEX = {"Authorization": "Bearer globex-key"}
SECRET = "The acme launch code is pelican marmalade forty two."
QUERY = "acme launch code pelican marmalade"


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("adversarial") / "data",
        REPO_ROOT / ".artifacts" / "e2e" / "logs" / "adversarial",
        extra_env={
            "DOCFLOW_AUTH_ENABLED": "true",
            "DOCFLOW_API_KEYS": json.dumps(
                {"acme": [hash_key("acme-key")], "globex": [hash_key("globex-key")]}
            ),
        },
    ) as running:
        yield running


def _completed(http: httpx.Client, stack: Stack, name: str, text: str, headers: dict) -> dict:
    response = http.post(
        f"{stack.url('gateway')}/v1/documents",
        files={"file": (name, text.encode())},
        headers=headers,
    )
    assert response.status_code == 202, response.text
    document: dict[str, Any] = response.json()["documents"][0]

    def done() -> bool:
        status = http.get(document["status_url"], headers=headers)
        return status.status_code == 200 and status.json()["status"] == "completed"

    wait_until(done, timeout_s=300, interval_s=0.3, what=f"{name} completed")
    return document


@pytest.fixture(scope="module")
def secret(stack: Stack, http: httpx.Client) -> dict:
    """acme's document, indexed."""
    return _completed(http, stack, "launch.md", f"# Launch\n\n{SECRET}\n", ACME)


def _publish(stack: Stack, event: Event) -> None:
    async def send() -> None:
        producer = make_broker(stack.kafka_bootstrap_servers, service="attacker")
        await producer.start()
        try:
            await producer.publish(event, topic=event.TOPIC, key=str(event.document_id).encode())
        finally:
            await producer.stop()

    asyncio.run(send())


def _rejected(http: httpx.Client, stack: Stack, service: str, reason: str) -> float:
    text = http.get(f"{stack.url(service)}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "docflow_events_rejected_total" and sample.labels == {
                "service": service,
                "reason": reason,
            }:
                return sample.value
    return 0.0


def _search(http: httpx.Client, stack: Stack, headers: dict) -> list[dict]:
    response = http.get(
        f"{stack.url('gateway')}/v1/search", params={"q": QUERY, "limit": 10}, headers=headers
    )
    assert response.status_code == 200, response.text
    results: list[dict] = response.json()["results"]
    return results


def test_a_forged_retry_does_not_put_another_tenants_file_in_globexs_search(
    stack: Stack, http: httpx.Client, secret: dict
) -> None:
    own = _completed(http, stack, "notes.md", "# Notes\n\nNothing to see here.\n", GLOBEX)
    forged = DocumentRetryRequested(
        document_id=own["id"],
        tenant_id="globex",
        correlation_id="forged",
        attempt=2,
        from_stage=Stage.EXTRACTING,
        filename="notes.md",
        content_type="text/markdown",
        charset="utf-8",
        # The claim check of acme's document.
        blob_key=f"acme/{secret['id']}/original",
    )
    _publish(stack, forged)

    def leaked() -> bool:
        return any("pelican" in r["text"] for r in _search(http, stack, GLOBEX))

    def handled() -> bool:
        refused = all(
            _rejected(http, stack, service, "blob_key") >= 1 for service in ("extractor", "status")
        )
        return refused or leaked()

    wait_until(handled, timeout_s=120, interval_s=0.5, what="the forged retry handled")
    assert not leaked(), "globex's search returned acme's text"
    assert _rejected(http, stack, "extractor", "blob_key") >= 1
    assert _rejected(http, stack, "status", "blob_key") >= 1
    # globex's own document is as it was: the forged attempt never started.
    status = http.get(own["status_url"], headers=GLOBEX).json()
    assert (status["status"], status["attempt"]) == ("completed", 1)


def test_a_forged_deletion_leaves_acmes_document_found(
    stack: Stack, http: httpx.Client, secret: dict
) -> None:
    forged = DocumentDeleted(
        document_id=uuid.UUID(secret["id"]), tenant_id="globex", correlation_id="forged"
    )
    _publish(stack, forged)

    def gone() -> bool:
        return http.get(secret["status_url"], headers=ACME).status_code == 404 or not any(
            "pelican" in r["text"] for r in _search(http, stack, ACME)
        )

    def handled() -> bool:
        refused = all(
            _rejected(http, stack, service, "tenant_changed") >= 1
            for service in ("embedder", "status")
        )
        return refused or gone()

    wait_until(handled, timeout_s=120, interval_s=0.5, what="the forged deletion handled")
    status = http.get(secret["status_url"], headers=ACME)
    assert status.status_code == 200, "acme's document is gone from the status API"
    assert status.json()["status"] == "completed"
    hits = _search(http, stack, ACME)
    assert any("pelican" in r["text"] and r["document_id"] == secret["id"] for r in hits)
    assert _rejected(http, stack, "embedder", "tenant_changed") >= 1
    assert _rejected(http, stack, "status", "tenant_changed") >= 1
