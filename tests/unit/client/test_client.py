"""The Python client against the real gateway and status apps, in-process
(httpx's ASGI transport): typed answers, problems as typed exceptions."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import reduce
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from docflow_client import (
    AsyncDocflow,
    Conflict,
    Docflow,
    Invalid,
    NotFound,
    Unavailable,
    Unreachable,
)
from docflow_client.models import DocumentStatus, Stage, Status
from docflow_status.domain.projection import DocumentState, evolve
from docflow_status.entrypoints.app import StatusApi, create_app
from docflow_status.settings import StatusSettings
from support.gateway import PDF, Recorder, Searches, Statuses, gateway_app
from support.histories import successful

pytestmark = pytest.mark.unit


class Documents:
    """The status service's read model, holding the given states (tenant "default")."""

    def __init__(self, *states: DocumentState) -> None:
        self.states = {s.id: s for s in states}

    async def get(self, document_id: UUID, tenant_id: str) -> DocumentState | None:
        return self.states.get(document_id)

    async def versioned(
        self, document_id: UUID, tenant_id: str
    ) -> tuple[int, DocumentState] | None:
        state = self.states.get(document_id)
        return None if state is None else (7, state)


def status_app(*states: DocumentState) -> FastAPI:
    api = StatusApi(
        settings=StatusSettings(default_tenant="default"),
        documents=Documents(*states),  # type: ignore[arg-type]
        checks={},
        registry=CollectorRegistry(),
    )
    return create_app(api)


def completed() -> DocumentState:
    state = reduce(evolve, successful(), None)
    assert state is not None
    return replace(state, tenant_id="default")


@asynccontextmanager
async def gateway(
    tmp_path: Path,
    publish: Recorder,
    searches: Searches | None = None,
    statuses: Statuses | None = None,
) -> AsyncIterator[AsyncDocflow]:
    app = gateway_app(
        f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        tmp_path / "blobs",
        publish,
        statuses,
        searches,
    )
    async with (
        app.router.lifespan_context(app),
        AsyncDocflow(
            "http://gateway", "http://status", transport=httpx.ASGITransport(app=app)
        ) as client,
    ):
        yield client


async def test_uploads_paths_file_objects_and_bytes_in_one_request(tmp_path: Path) -> None:
    on_disk = tmp_path / "a.pdf"
    on_disk.write_bytes(PDF)
    opened = io.BytesIO(b"# notes\n\nsome text\n")
    opened.name = "/somewhere/notes.md"
    publish = Recorder()
    async with gateway(tmp_path, publish) as client:
        accepted = await client.upload(on_disk, opened, ("c.txt", b"plain text\n"))

    assert [a.filename for a in accepted] == ["a.pdf", "notes.md", "c.txt"]
    assert [a.status for a in accepted] == ["pending"] * 3
    assert accepted[0].size_bytes == len(PDF)
    assert all(isinstance(a.id, UUID) for a in accepted)
    assert accepted[0].status_url.endswith(f"/v1/documents/{accepted[0].id}")
    assert sorted(e.filename for e in publish.events) == ["a.pdf", "c.txt", "notes.md"]  # type: ignore[attr-defined]


async def test_a_problem_is_raised_as_its_typed_exception(tmp_path: Path) -> None:
    async with gateway(tmp_path, Recorder()) as client:
        with pytest.raises(Invalid) as refused:
            await client.upload(("empty.pdf", b""))
    problem = refused.value
    assert (problem.status, problem.code) == (422, "empty-file")
    assert problem.problem["status"] == 422
    assert problem.title
    assert str(problem) == f"{problem.detail} (HTTP 422, empty-file)"


async def test_an_upload_kafka_did_not_take_is_tried_again_then_raised(tmp_path: Path) -> None:
    publish = Recorder(fail=True)
    async with gateway(tmp_path, publish) as client:
        with pytest.raises(Unavailable) as refused:
            await client.upload(("a.pdf", io.BytesIO(PDF)), attempts=2)
    assert refused.value.status == 503
    assert refused.value.retry_after is not None


async def test_search_answers_typed_results(tmp_path: Path) -> None:
    searches = Searches()
    async with gateway(tmp_path, Recorder(), searches) as client:
        (accepted,) = await client.upload(("report.pdf", PDF))
        searches.hits = [
            {
                "document_id": str(accepted.id),
                "chunk_index": 3,
                "page": 2,
                "page_end": 2,
                "score": 0.9,
                "text": "best",
            }
        ]
        found = await client.search("what is it about", limit=5)
        by_words = await client.search("XK-4471", mode="keyword")
    assert searches.modes == ["hybrid", "keyword"]
    assert (found.mode, by_words.mode, found.note) == ("hybrid", "keyword", None)
    assert (found.query, found.model) == ("what is it about", "test-model")
    (result,) = found.results
    assert (result.document_id, result.filename, result.page, result.score) == (
        accepted.id,
        "report.pdf",
        2,
        0.9,
    )
    assert searches.calls[0] == ("what is it about", "default", 5)


async def test_cancel_delete_and_a_refused_retry(tmp_path: Path) -> None:
    statuses = Statuses()
    async with gateway(tmp_path, Recorder(), statuses=statuses) as client:
        first, second = await client.upload(("a.pdf", PDF), ("b.pdf", PDF))
        statuses.by_id[first.id] = {"status": "processing", "stage": "embedding", "attempt": 2}
        cancelled = await client.cancel(first.id)
        with pytest.raises(Conflict) as refused:
            await client.retry(first.id)  # still processing: only failed or cancelled ones
        deleted = await client.delete(second.id)
    assert (cancelled.id, cancelled.operation, cancelled.attempt) == (first.id, "cancel", 2)
    assert (deleted.id, deleted.operation) == (second.id, "delete")
    assert refused.value.status == 409
    assert refused.value.code


async def test_dead_letters_and_a_dry_run_redrive_of_none(tmp_path: Path) -> None:
    async with gateway(tmp_path, Recorder()) as client:
        page = await client.dead_letters(limit=10)
        result = await client.redrive(dry_run=True)
    assert (page.dead_letters, page.next_cursor) == ([], None)
    assert (result.dead_letters, result.retried, result.skipped) == (0, [], [])


async def test_webhooks_are_registered_listed_and_deleted(tmp_path: Path) -> None:
    async with gateway(tmp_path, Recorder()) as client:
        made = await client.create_webhook(
            "https://93.184.215.14/hook", events=["completed"], description="ours"
        )
        listed = await client.webhooks()
        one = await client.webhook(made.id)
        deliveries = await client.webhook_deliveries(made.id, limit=5)
        later = await client.webhook_deliveries(made.id, limit=5, cursor="12")
        rotated = await client.rotate_webhook_secret(made.id)
        with pytest.raises(NotFound):
            await client.rotate_webhook_secret(uuid4())
        with pytest.raises(NotFound):
            await client.redrive_webhook_delivery(made.id, uuid4())
        with pytest.raises(Invalid) as refused:
            await client.create_webhook("http://169.254.169.254/latest")
        await client.delete_webhook(made.id)
        with pytest.raises(NotFound):
            await client.webhook(made.id)
        with pytest.raises(NotFound):
            await client.delete_webhook(made.id)
    assert made.secret.startswith("whsec_")
    assert (made.events, made.description) == (["completed"], "ours")
    assert [w.id for w in listed.webhooks] == [made.id]
    assert one.url == "https://93.184.215.14/hook"
    assert (deliveries.deliveries, deliveries.next_cursor) == ([], None)
    assert later.deliveries == []
    assert rotated.id == made.id
    assert rotated.secret.startswith("whsec_")
    assert rotated.secret != made.secret
    assert rotated.previous_secret_expires_at > one.created_at
    assert refused.value.code == "webhook-url-refused"


async def test_an_unknown_document_is_not_found_on_both_services(tmp_path: Path) -> None:
    async with gateway(tmp_path, Recorder()) as client:
        with pytest.raises(NotFound) as at_gateway:
            await client.chunks(uuid4())
    async with AsyncDocflow(
        "http://gateway", "http://status", transport=httpx.ASGITransport(app=status_app())
    ) as client:
        with pytest.raises(NotFound) as at_status:
            await client.status(uuid4())
    assert at_gateway.value.status == at_status.value.status == 404
    assert at_status.value.code == "document-not-found"


async def test_status_wait_and_stream_are_typed() -> None:
    done = completed()
    app = status_app(done)
    async with AsyncDocflow(
        "http://gateway", "http://status", transport=httpx.ASGITransport(app=app)
    ) as client:
        status = await client.status(done.id)
        waited = await client.wait(done.id, timeout=5)
        # A document's stream ends after its terminal status.
        changes = [change async for change in client.stream(done.id)]
    assert isinstance(status, DocumentStatus)
    assert (status.status, status.stage, status.progress) == (Status.COMPLETED, Stage.INDEXED, 100)
    assert status.created_at is not None
    assert status.created_at.tzinfo is not None
    assert waited == status
    (change,) = changes
    assert (change.kind, change.id, change.event_id) == ("status", done.id, "7")
    assert change.document == status


async def test_wait_gives_up_after_its_timeout() -> None:
    done = completed()
    running = replace(done, status="processing", stage="embedding")
    app = status_app(running)
    async with AsyncDocflow(
        "http://gateway", "http://status", transport=httpx.ASGITransport(app=app)
    ) as client:
        with pytest.raises(TimeoutError, match="still processing"):
            await client.wait(running.id, timeout=0.3, poll_s=0.1)


def test_the_blocking_client_has_the_same_answers_and_errors() -> None:
    done = completed()
    transport = httpx.ASGITransport(app=status_app(done))
    with Docflow("http://gateway", "http://status", transport=transport) as client:
        assert client.status(done.id).status == Status.COMPLETED
        assert client.wait(done.id, timeout=5).progress == 100
        assert [c.id for c in client.stream(done.id)] == [done.id]
        with pytest.raises(NotFound):
            client.status(uuid4())


async def test_nothing_answering_is_unreachable() -> None:
    async with AsyncDocflow("http://127.0.0.1:9", "http://127.0.0.1:9") as client:
        with pytest.raises(Unreachable, match=r"cannot reach http://127\.0\.0\.1:9: .*running"):
            await client.status(uuid4())
