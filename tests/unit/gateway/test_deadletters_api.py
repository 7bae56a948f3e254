"""GET /v1/deadletters and POST /v1/deadletters/redrive on the gateway: the tenant's
dead letters only, one new attempt per document, skips with reasons.

The dead-letter topic itself is read for real in tests/service/test_failures.py,
and the whole path (outage, dead letter, fix, re-drive, completed) runs in
tests/e2e/test_failure_recovery.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from docflow_shared import retries, topics
from docflow_shared.auth import hash_key
from docflow_shared.deadletters import DeadLetter
from docflow_shared.events import DocumentRetryRequested, DocumentUploaded, Stage
from docflow_shared.sql import create_engine
from support.gateway import PDF, ClientFor, Recorder, Statuses

KEYS = {"acme": [hash_key("acme-key")], "globex": [hash_key("globex-key")]}
ACME = {"X-API-Key": "acme-key"}
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def letter(
    document_id: UUID | None, tenant: str, service: str, error: str, minute: int = 0
) -> DeadLetter:
    return DeadLetter(
        partition=0,
        offset=minute,
        at=T0 + timedelta(minutes=minute),
        body=json.dumps({"document_id": str(document_id), "tenant_id": tenant}).encode()
        if document_id
        else b"not an event",
        headers={
            retries.ORIGINAL_TOPIC: topics.EXTRACTED if service == "embedder" else topics.UPLOADED,
            retries.SERVICE: service,
            retries.STAGE: "embedding" if service == "embedder" else "extracting",
            retries.ERROR: error,
            retries.RETRIES: "3",
        },
        document_id=document_id,
        tenant_id=tenant if document_id else None,
    )


def failed(stage: str) -> dict[str, Any]:
    error = {"code": "internal", "message": "gave up", "stage": stage, "retryable": True}
    return {"status": "failed", "stage": stage, "attempt": 1, "error": error}


def uploaded(client: Any, publish: Recorder) -> UUID:
    unique = PDF + f"% {uuid4()}\n".encode()  # not a copy of another upload (dedup)
    response = client.post("/v1/documents", files={"file": ("a.pdf", unique)}, headers=ACME)
    assert response.status_code == 202
    event = publish.events[-1]
    assert isinstance(event, DocumentUploaded)
    return event.document_id


def test_the_tenants_dead_letters_are_listed_and_redriven_once_per_document(
    tmp_path: Path, client_for: ClientFor
) -> None:
    publish, statuses = Recorder(), Statuses()
    letters: list[DeadLetter] = []
    client = client_for(
        tmp_path / "blobs", publish, statuses, letters=letters, auth_enabled=True, api_keys=KEYS
    )
    embedding, extracting, done = (uploaded(client, publish) for _ in range(3))
    statuses.by_id[embedding] = failed("embedding")
    statuses.by_id[extracting] = failed("extracting")
    statuses.by_id[done] = {"status": "completed", "stage": "indexed", "attempt": 1}
    letters += [
        letter(embedding, "acme", "embedder", "Qdrant: connection refused", 1),
        letter(embedding, "acme", "embedder", "Qdrant: connection refused", 2),
        letter(extracting, "acme", "extractor", "blob store: timed out", 3),
        letter(done, "acme", "embedder", "Qdrant: connection refused", 4),
        letter(uuid4(), "globex", "embedder", "not yours", 5),
        letter(None, "", "embedder", "unreadable message", 6),
        letter(uuid4(), "acme", "embedder", "deleted since", 7),
    ]

    listed = client.get("/v1/deadletters", headers=ACME).json()["dead_letters"]
    assert [d["error"] for d in listed] == [
        "Qdrant: connection refused",
        "Qdrant: connection refused",
        "blob store: timed out",
        "Qdrant: connection refused",
        "deleted since",
    ]
    assert listed[0]["topic"] == topics.EXTRACTED
    assert listed[0]["retries"] == 3

    dry = client.post("/v1/deadletters/redrive", json={"dry_run": True}, headers=ACME).json()
    assert len(dry["retried"]) == 3  # the deleted one is skipped even in a dry run
    assert len(publish.events) == 3  # the uploads only

    result = client.post(
        "/v1/deadletters/redrive", json={}, headers={**ACME, "X-Correlation-Id": "fix-42"}
    ).json()
    assert result["dead_letters"] == 5
    assert [(r["id"], r["attempt"]) for r in result["retried"]] == [
        (str(embedding), 2),
        (str(extracting), 2),
    ]
    skipped = {s["id"]: s["reason"] for s in result["skipped"]}
    assert "completed" in skipped[str(done)]
    assert list(skipped.values())[-1] == "deleted"
    events = [e for e in publish.events if isinstance(e, DocumentRetryRequested)]
    assert [(e.document_id, e.from_stage, e.correlation_id) for e in events] == [
        (embedding, Stage.EMBEDDING, "fix-42"),
        (extracting, Stage.EXTRACTING, "fix-42"),
    ]


def test_a_filter_chooses_which_dead_letters_to_redrive(
    tmp_path: Path, client_for: ClientFor
) -> None:
    publish, statuses = Recorder(), Statuses()
    letters: list[DeadLetter] = []
    client = client_for(tmp_path / "blobs", publish, statuses, letters=letters)
    a, b = uploaded(client, publish), uploaded(client, publish)
    statuses.by_id[a] = failed("embedding")
    statuses.by_id[b] = failed("extracting")
    letters += [
        letter(a, "default", "embedder", "Qdrant: connection refused", 1),
        letter(b, "default", "extractor", "blob store: timed out", 30),
    ]
    for body, expected in (
        ({"service": "extractor"}, [b]),
        ({"error_contains": "Qdrant"}, [a]),
        ({"since": (T0 + timedelta(minutes=10)).isoformat()}, [b]),
        ({"document_ids": [str(a)]}, [a]),
    ):
        result = client.post("/v1/deadletters/redrive", json={**body, "dry_run": True}).json()
        assert [r["id"] for r in result["retried"]] == [str(d) for d in expected], body
    assert client.post("/v1/deadletters/redrive", json={"service": "status"}).status_code == 422


def test_a_webhook_delivery_given_up_on_is_listed_but_retries_no_document(
    tmp_path: Path, client_for: ClientFor
) -> None:
    publish, statuses = Recorder(), Statuses()
    letters: list[DeadLetter] = []
    client = client_for(tmp_path / "blobs", publish, statuses, letters=letters)
    a, b = uploaded(client, publish), uploaded(client, publish)
    statuses.by_id[a] = statuses.by_id[b] = failed("embedding")
    letters += [
        letter(a, "default", "webhooks", "HTTP 500: receiver down", 1),
        letter(b, "default", "embedder", "Qdrant: connection refused", 2),
    ]
    listed = client.get("/v1/deadletters").json()["dead_letters"]
    assert [(d["document_id"], d["service"]) for d in listed] == [
        (str(a), "webhooks"),
        (str(b), "embedder"),
    ]
    result = client.post("/v1/deadletters/redrive", json={}).json()
    assert [r["id"] for r in result["retried"]] == [str(b)]


def test_the_index_unavailable_is_a_503(tmp_path: Path, client_for: ClientFor) -> None:
    letters: list[DeadLetter] = []
    client = client_for(tmp_path / "blobs", Recorder(), letters=letters)
    index = client.app.state.ports.dead_letters.index  # type: ignore[attr-defined]
    index.engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'gone.db'}")
    for response in (
        client.get("/v1/deadletters"),
        client.post("/v1/deadletters/redrive", json={}),
    ):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
