"""The webhook dispatcher's decisions (webhooks.py, domain/webhooks.py) with the real
SQL store and a recording sender and parking: which status change is which
event, each event once per endpoint, retry or give up by the answer.

The same on the real broker, with a receiver: tests/integration/test_webhooks.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID, uuid4

import pytest
from prometheus_client import CollectorRegistry

from docflow_gateway.adapters.egress import Answer
from docflow_gateway.adapters.registry import SqlRegistry
from docflow_gateway.adapters.webhook_store import WebhookStore
from docflow_gateway.domain.webhooks import Delivery, Kind, event_key, kind_of, new_secret
from docflow_gateway.webhooks import Dispatcher, WebhookMetrics
from docflow_shared.events import DocumentStatusChanged, Stage, Status
from docflow_shared.retries import Origin, Parking
from docflow_shared.sql import create_engine

pytestmark = pytest.mark.unit

TENANT = "acme"


def snapshot(document: UUID, version: int, status: Status, **fields: Any) -> DocumentStatusChanged:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "document_id": document,
        "tenant_id": TENANT,
        "correlation_id": "c",
        "version": version,
        "filename": "a.txt",
        "content_type": "text/plain",
        "status": status,
        "stage": Stage.EXTRACTING,
        "progress": 10,
        "message": "",
        "pages": None,
        "chunks_total": None,
        "chunks_embedded": 0,
        "error": None,
        "stalled": False,
        "deleted": False,
        "created_at": now,
        "started_at": now,
        "completed_at": None,
        "updated_at": now,
    }
    return DocumentStatusChanged(**(values | fields))


class Parked:
    """Parking's two calls, recorded."""

    def __init__(self) -> None:
        self.retried: list[tuple[Delivery, str]] = []
        self.dead: list[tuple[bytes, str]] = []
        self.max_retries = 3

    async def retry(self, body: bytes, origin: Origin, reason: str, stage: str) -> datetime:
        self.retried.append((Delivery.model_validate_json(body), reason))
        return datetime.now(UTC)

    async def dead_letter(
        self, body: bytes, origin: Origin | None, reason: str, stage: str
    ) -> None:
        self.dead.append((body, reason))


class Endpoint:
    """A recording sender answering ``answers`` in turn (then 200)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, str, str]] = []

    async def __call__(self, url: str, secret: str, webhook_id: str, body: str) -> Answer:
        self.sent.append((url, webhook_id, body))
        return self.answers.pop(0) if self.answers else Answer(200, "ok", 0.01)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[WebhookStore]:
    records = SqlRegistry(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"))
    await records.migrate()
    yield WebhookStore(records.engine, records.writing)
    await records.engine.dispose()


def origin(retries: int = 0) -> Origin:
    return Origin("docflow.document.status.v1", 0, 1, b"k", {"docflow-retries": str(retries)})


def dispatcher(store: WebhookStore, send: Endpoint, parked: Parked) -> Dispatcher:
    metrics = WebhookMetrics(CollectorRegistry())
    return Dispatcher(store, send, cast(Parking, parked), metrics)


def test_the_event_kinds_and_keys() -> None:
    document = uuid4()
    done = snapshot(document, 5, Status.COMPLETED)
    assert kind_of(done) is Kind.COMPLETED
    assert kind_of(snapshot(document, 1, Status.PENDING)) is Kind.PROGRESS
    assert kind_of(snapshot(document, 2, Status.PROCESSING)) is Kind.PROGRESS
    assert kind_of(snapshot(document, 3, Status.CANCELLED)) is Kind.CANCELLED
    assert kind_of(snapshot(document, 6, Status.COMPLETED, deleted=True)) is None
    # A completion is one event per attempt, whatever its version; progress one per version.
    assert event_key(done, Kind.COMPLETED) == event_key(
        snapshot(document, 9, Status.COMPLETED), Kind.COMPLETED
    )
    assert event_key(done, Kind.COMPLETED) != event_key(
        snapshot(document, 9, Status.COMPLETED, attempt=2), Kind.COMPLETED
    )
    assert event_key(snapshot(document, 1, Status.PENDING), Kind.PROGRESS) != event_key(
        snapshot(document, 2, Status.PENDING), Kind.PROGRESS
    )


async def test_each_event_goes_once_to_each_endpoint_that_wants_it(store: WebhookStore) -> None:
    wants = await store.add_endpoint(
        TENANT, "https://a.example/", ["completed"], None, new_secret()
    )
    progress = await store.add_endpoint(TENANT, "https://b.example/", ["progress"], None, "whsec_x")
    await store.add_endpoint("other", "https://c.example/", ["completed"], None, new_secret())
    send, parked = Endpoint(), Parked()
    dispatch = dispatcher(store, send, parked)
    document = uuid4()
    for record in (
        snapshot(document, 1, Status.PROCESSING),
        snapshot(document, 2, Status.COMPLETED),
        snapshot(document, 3, Status.COMPLETED),  # the same completion again
        snapshot(document, 2, Status.COMPLETED),  # republished
        snapshot(document, 4, Status.COMPLETED, deleted=True),
        snapshot(uuid4(), 1, Status.COMPLETED, occurred_at=wants.created_at - timedelta(seconds=1)),
    ):
        await dispatch.on_status(record.model_dump_json().encode(), origin())
    await dispatch.on_status(b"not a status", origin())
    assert [url for url, _, _ in send.sent] == ["https://b.example/", "https://a.example/"]
    assert (parked.retried, parked.dead) == ([], [])
    rows = await store.deliveries(TENANT, wants.id, 10)
    assert [(r.state, r.attempts, r.response_status) for r in rows] == [("delivered", 1, 200)]
    assert len(await store.deliveries(TENANT, progress.id, 10)) == 1


async def test_an_answer_other_than_2xx_is_parked_then_given_up(store: WebhookStore) -> None:
    endpoint = await store.add_endpoint(TENANT, "https://a.example/", ["failed"], None, "whsec_x")
    send = Endpoint(*[Answer(503, "busy", 0.01)] * 4)
    parked = Parked()
    dispatch = dispatcher(store, send, parked)
    record = snapshot(uuid4(), 3, Status.FAILED).model_dump_json().encode()
    await dispatch.on_status(record, origin())
    (delivery, reason), *_ = parked.retried
    assert reason == "HTTP 503: busy"
    assert "whsec_" not in delivery.model_dump_json()
    for retries in (1, 2, 3):
        await dispatch.on_parked(delivery.model_dump_json().encode(), origin(retries))
    assert len(parked.retried) == 3
    assert [reason for _, reason in parked.dead] == ["HTTP 503: busy"]
    (row,) = await store.deliveries(TENANT, endpoint.id, 10)
    assert (row.state, row.attempts, row.response_status) == ("failed", 4, 503)
    assert len({webhook_id for _, webhook_id, _ in send.sent}) == 1


async def test_a_refused_address_is_not_retried(store: WebhookStore) -> None:
    endpoint = await store.add_endpoint(TENANT, "http://10.0.0.1/", ["completed"], None, "whsec_x")
    send, parked = Endpoint(Answer(None, "10.0.0.1 is not public", 0.0, refused=True)), Parked()
    dispatch = dispatcher(store, send, parked)
    await dispatch.on_status(
        snapshot(uuid4(), 2, Status.COMPLETED).model_dump_json().encode(), origin()
    )
    assert parked.retried == []
    assert [reason for _, reason in parked.dead] == ["refused: 10.0.0.1 is not public"]
    (row,) = await store.deliveries(TENANT, endpoint.id, 10)
    assert row.state == "refused"


async def test_a_parked_delivery_of_a_deleted_endpoint_is_dropped(store: WebhookStore) -> None:
    endpoint = await store.add_endpoint(
        TENANT, "https://a.example/", ["completed"], None, "whsec_x"
    )
    send, parked = Endpoint(Answer(500, "", 0.01)), Parked()
    dispatch = dispatcher(store, send, parked)
    await dispatch.on_status(
        snapshot(uuid4(), 2, Status.COMPLETED).model_dump_json().encode(), origin()
    )
    ((delivery, _),) = parked.retried
    assert await store.remove_endpoint(TENANT, endpoint.id)
    await dispatch.on_parked(delivery.model_dump_json().encode(), origin(1))
    assert len(send.sent) == 1
    await dispatch.on_parked(b"{not json", origin(1))
    assert [reason.split(":")[0] for _, reason in parked.dead] == ["unreadable delivery"]
