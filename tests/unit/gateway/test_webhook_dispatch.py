"""The webhook dispatcher's decisions (webhooks.py, domain/webhooks.py) with the real
SQL store and a recording sender and parking: which status change is which
event, each event once per endpoint, retry or give up by the answer.

The same on the real broker, with a receiver: tests/integration/test_webhooks.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID, uuid4

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import update

from docflow_gateway.adapters.egress import Answer
from docflow_gateway.adapters.registry import SqlRegistry
from docflow_gateway.adapters.webhook_store import (
    WebhookDelivery,
    WebhookEndpoint,
    WebhookStore,
)
from docflow_gateway.domain.webhooks import Delivery, Kind, event_key, kind_of, new_secret
from docflow_gateway.webhooks import Dispatcher, EndpointCache, Send, WebhookMetrics
from docflow_shared.batches import Item
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

    async def __call__(
        self,
        url: str,
        secrets: Sequence[str],
        webhook_id: str,
        body: str,
        *,
        timeout_s: float | None = None,
    ) -> Answer:
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


def items(*records: DocumentStatusChanged) -> list[Item[DocumentStatusChanged]]:
    return [Item(r.model_dump_json().encode(), r, origin()) for r in records]


class Gated(Endpoint):
    """A sender whose requests for ``held`` documents wait for ``gate``; records the
    order requests start in, and how many were in flight at most."""

    def __init__(self, held: set[UUID] | None = None, pause_s: float = 0.0) -> None:
        super().__init__()
        self.held = held or set()
        self.gate = asyncio.Event()
        self.pause_s = pause_s
        self.in_flight = 0
        self.most = 0
        self.timeouts: list[float | None] = []

    async def __call__(
        self,
        url: str,
        secrets: Sequence[str],
        webhook_id: str,
        body: str,
        *,
        timeout_s: float | None = None,
    ) -> Answer:
        self.timeouts.append(timeout_s)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            self.sent.append((url, webhook_id, body))
            if UUID(json.loads(body)["data"]["document_id"]) in self.held:
                await self.gate.wait()
            await asyncio.sleep(self.pause_s)
            return Answer(200, "ok", 0.01)
        finally:
            self.in_flight -= 1


def versions(send: Endpoint, document: UUID) -> list[int]:
    found = [json.loads(body)["data"] for _, _, body in send.sent]
    return [d["version"] for d in found if d["document_id"] == str(document)]


async def test_a_slow_document_does_not_hold_the_others_and_each_keeps_its_order(
    store: WebhookStore,
) -> None:
    await store.add_endpoint(TENANT, "https://a.example/", ["progress", "completed"], None, "s")
    slow, fast = uuid4(), uuid4()
    send = Gated(held={slow})
    dispatch = Dispatcher(
        store,
        send,
        cast(Parking, Parked()),
        WebhookMetrics(CollectorRegistry()),
        concurrency=4,
        first_attempt_timeout_s=1.5,
    )
    batch = items(
        snapshot(slow, 1, Status.PROCESSING),
        snapshot(fast, 1, Status.PROCESSING),
        snapshot(slow, 2, Status.PROCESSING),
        snapshot(fast, 2, Status.PROCESSING),
        snapshot(fast, 3, Status.COMPLETED),
        snapshot(slow, 3, Status.COMPLETED),
    )
    handling = asyncio.create_task(dispatch.on_batch(batch))
    # One at a time, the fast document would wait behind the slow one's first request.
    for _ in range(200):
        if len(versions(send, fast)) == 3:
            break
        await asyncio.sleep(0.01)
    assert versions(send, fast) == [1, 2, 3]
    assert versions(send, slow) == [1]  # its next waits for its first: in order
    assert not handling.done()
    send.gate.set()
    await asyncio.wait_for(handling, 5)
    assert versions(send, slow) == [1, 2, 3]
    assert set(send.timeouts) == {1.5}  # first attempts: the shorter timeout


async def test_deliveries_in_flight_are_bounded(store: WebhookStore) -> None:
    await store.add_endpoint(TENANT, "https://a.example/", ["completed"], None, "s")
    await store.add_endpoint(TENANT, "https://b.example/", ["completed"], None, "s")
    send = Gated(pause_s=0.05)
    metrics = WebhookMetrics(CollectorRegistry())
    dispatch = Dispatcher(store, send, cast(Parking, Parked()), metrics, concurrency=3)
    await dispatch.on_batch(items(*(snapshot(uuid4(), 2, Status.COMPLETED) for _ in range(8))))
    assert len(send.sent) == 16
    assert send.most == 3


async def test_an_error_of_one_document_lets_the_others_settle_then_raises(
    store: WebhookStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.add_endpoint(TENANT, "https://a.example/", ["completed"], None, "s")
    broken, fine = uuid4(), uuid4()
    recorded = store.attempted

    async def attempted(delivery: Delivery, *args: Any) -> None:
        if delivery.document_id == broken:
            raise RuntimeError("a value the database refuses")
        await asyncio.sleep(0.05)
        await recorded(delivery, *args)

    monkeypatch.setattr(store, "attempted", attempted)
    dispatch = dispatcher(store, Endpoint(), Parked())
    with pytest.raises(RuntimeError, match="refuses"):
        await dispatch.on_batch(
            items(snapshot(broken, 2, Status.COMPLETED), snapshot(fine, 2, Status.COMPLETED))
        )
    (endpoint,) = await store.endpoints(TENANT)
    ((row),) = await store.deliveries(TENANT, endpoint.id, 10)
    assert (row.document_id, row.state) == (fine, "delivered")


async def test_the_endpoint_cache_serves_older_events_and_never_misses_a_new_endpoint(
    store: WebhookStore,
) -> None:
    first = await store.add_endpoint(TENANT, "https://a.example/", ["completed"], None, "s")
    async with store.engine.begin() as connection:  # registered an hour ago
        await connection.execute(
            update(WebhookEndpoint).values(created_at=datetime.now(UTC) - timedelta(hours=1))
        )
    cache = EndpointCache(store, ttl_s=60)
    send, parked = Endpoint(), Parked()
    dispatch = Dispatcher(
        store, send, cast(Parking, parked), WebhookMetrics(CollectorRegistry()), endpoints=cache
    )
    past = datetime.now(UTC) - timedelta(seconds=30)
    old = [snapshot(uuid4(), 2, Status.COMPLETED, occurred_at=past) for _ in range(3)]
    await dispatch.on_batch(items(old[0]))
    await dispatch.on_batch(items(old[1]))
    assert cache.reads == 1  # a backlog: older than the read, served from the cache
    assert [url for url, _, _ in send.sent] == ["https://a.example/"] * 2
    # An endpoint made since, and an event after it: read again, sent to both.
    later = await store.add_endpoint(TENANT, "https://b.example/", ["completed"], None, "s")
    await dispatch.on_batch(items(snapshot(uuid4(), 2, Status.COMPLETED)))
    assert cache.reads == 2
    assert [url for url, _, _ in send.sent[-2:]] == ["https://a.example/", "https://b.example/"]
    # A deleted endpoint is still in the cache for older events, at most ttl_s.
    assert await store.remove_endpoint(TENANT, first.id)
    await dispatch.on_batch(items(old[2]))
    assert cache.reads == 2
    assert send.sent[-1][0] == "https://a.example/"
    fresh = EndpointCache(store, ttl_s=0)
    assert [t.id for t in await fresh.of(TENANT, past)] == [later.id]
    assert [t.id for t in await fresh.of(TENANT, past)] == [later.id]
    assert fresh.reads == 2


async def test_a_rotated_secret_signs_with_the_old_one_during_the_overlap(
    store: WebhookStore,
) -> None:
    endpoint = await store.add_endpoint(TENANT, "https://a.example/", ["completed"], None, "old")
    until = datetime.now(UTC) + timedelta(hours=1)
    assert await store.rotate_secret(TENANT, endpoint.id, "new", until)
    assert not await store.rotate_secret("other", endpoint.id, "stolen", until)
    (target,) = await store.targets(TENANT)
    assert target.signing_secrets(datetime.now(UTC)) == ("new", "old")
    assert target.signing_secrets(until) == ("new",)
    # Rotated again within the overlap: the first secret no longer signs.
    assert await store.rotate_secret(TENANT, endpoint.id, "newer", until)
    target = await store.target(TENANT, endpoint.id)
    assert target is not None
    assert target.signing_secrets(datetime.now(UTC)) == ("newer", "new")

    signed: list[Sequence[str]] = []

    async def send(url: str, secrets: Sequence[str], *args: Any, **kwargs: Any) -> Answer:
        signed.append(secrets)
        return Answer(200, "", 0.01)

    dispatch = Dispatcher(
        store, cast(Send, send), cast(Parking, Parked()), WebhookMetrics(CollectorRegistry())
    )
    await dispatch.on_batch(items(snapshot(uuid4(), 2, Status.COMPLETED)))
    assert signed == [("newer", "new")]


async def test_old_deliveries_are_pruned_but_not_those_waiting_for_a_retry(
    store: WebhookStore,
) -> None:
    endpoint = await store.add_endpoint(TENANT, "https://a.example/", ["completed"], None, "s")
    dispatch = Dispatcher(
        store,
        Endpoint(Answer(200, "", 0.0), Answer(500, "", 0.0), Answer(200, "", 0.0)),
        cast(Parking, Parked()),
        WebhookMetrics(CollectorRegistry()),
        retention=timedelta(days=30),
    )
    for _ in range(3):
        await dispatch._deliver(
            Delivery.of(snapshot(uuid4(), 2, Status.COMPLETED), Kind.COMPLETED, endpoint.id),
            (await store.targets(TENANT))[0],
            origin(),
        )
    rows = await store.deliveries(TENANT, endpoint.id, 10)
    assert sorted(r.state for r in rows) == ["delivered", "delivered", "retrying"]
    # Make two of them (one delivered, the retrying one) 31 days old.
    old = datetime.now(UTC) - timedelta(days=31)
    async with store.engine.begin() as connection:
        await connection.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.seq.in_([rows[0].seq, rows[1].seq]))
            .values(last_attempt_at=old)
        )
    assert await dispatch.prune_if_due() == 1
    assert await dispatch.prune_if_due() == 0  # not due again for PRUNE_EVERY_S
    left = await store.deliveries(TENANT, endpoint.id, 10)
    assert sorted(r.state for r in left) == ["delivered", "retrying"]
    assert rows[1].seq in {r.seq for r in left}  # the retrying one, though old
