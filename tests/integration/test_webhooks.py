"""The webhook dispatcher on the real broker, against a receiver started here that
verifies each delivery's signature with the client's ``verify_webhook``:
delivered and verified (each event once per endpoint), retried through the
retry topics when the receiver fails on purpose or is down for a while and
delivered once it is back, dead-lettered with the endpoint's last answer when
out of retries, refused for a private address, and re-driven.

The outbound guard itself (addresses, DNS, redirects, caps):
tests/unit/gateway/test_webhook_egress.py; the routes: tests/unit/gateway/test_webhooks_api.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from docflow_client import verify_webhook
from docflow_gateway.adapters.egress import EgressPolicy, WebhookSender
from docflow_gateway.adapters.registry import SqlRegistry
from docflow_gateway.adapters.webhook_store import WebhookDelivery, WebhookStore
from docflow_gateway.bootstrap import delivery_redriver
from docflow_gateway.domain.webhooks import new_secret
from docflow_gateway.entrypoints.dispatcher import wire_webhooks
from docflow_gateway.settings import GatewaySettings
from docflow_local.processes import free_port
from docflow_shared import retries, topics
from docflow_shared.deadletters import dead_letters
from docflow_shared.events import DocumentStatusChanged, ErrorCode, ErrorInfo, Stage, Status
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.messaging import make_broker
from docflow_shared.sql import create_engine

pytestmark = pytest.mark.integration

DELAYS_S = [0.5, 1.0, 1.5]
WAIT_S = 90.0


@dataclass
class Receiver:
    """An HTTP endpoint on 127.0.0.1 that verifies every delivery with ``secret``;
    answers ``fail`` (status, body) that many times first, then 200."""

    port: int
    secret: str = ""
    fail: list[tuple[int, bytes]] = field(default_factory=list)
    # Seconds to wait before answering, a request at a time (then at once).
    stall: list[float] = field(default_factory=list)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    raw: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # time.monotonic()
    seen: list[str] = field(default_factory=list)
    unverified: int = 0
    server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:] if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.seen.append(headers.get("webhook-id", ""))
        self.raw.append((headers, body))
        self.arrived.append(time.monotonic())
        if self.stall:
            await asyncio.sleep(self.stall.pop(0))
        if self.fail:
            status, answer = self.fail.pop(0)
        else:
            try:
                payload = verify_webhook(self.secret, body, headers)
            except Exception:
                self.unverified += 1
                status, answer = 400, b"bad signature"
            else:
                self.received.append((headers["webhook-id"], payload))
                status, answer = 200, b"thanks"
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: {len(answer)}\r\n\r\n".encode() + answer
        )
        await writer.drain()
        writer.close()


@dataclass
class Dispatching:
    bootstrap: str
    store: WebhookStore
    registry: CollectorRegistry
    redrive: Callable[..., Awaitable[None]]
    tenant: str = field(default_factory=lambda: f"t{uuid4().hex[:10]}")

    async def endpoint(self, url: str, kinds: list[str], tenant: str | None = None) -> UUID:
        made = await self.store.add_endpoint(
            tenant or self.tenant, url, kinds, None, secret=self.secret
        )
        return made.id

    secret: str = field(default_factory=new_secret)

    async def publish(
        self, *snapshots: DocumentStatusChanged, partition: int | None = None
    ) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            for snapshot in snapshots:
                await producer.send_and_wait(
                    topics.STATUS,
                    snapshot.model_dump_json().encode(),
                    key=str(snapshot.document_id).encode(),
                    partition=partition,
                )
        finally:
            await producer.stop()

    async def deliveries(self, endpoint: UUID, tenant: str | None = None) -> list[WebhookDelivery]:
        return await self.store.deliveries(tenant or self.tenant, endpoint, 100)

    async def until(
        self, endpoint: UUID, done: Callable[[list[WebhookDelivery]], bool]
    ) -> list[WebhookDelivery]:
        deadline = time.monotonic() + WAIT_S
        while True:
            found = await self.deliveries(endpoint)
            if done(found):
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"deliveries of {endpoint} never got there: {found}")
            await asyncio.sleep(0.1)

    def count(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def snapshot(
    tenant: str,
    document: UUID,
    version: int,
    status: Status,
    *,
    attempt: int = 1,
    at: datetime | None = None,
) -> DocumentStatusChanged:
    error = (
        ErrorInfo(code=ErrorCode.CORRUPT, message="bad", stage=Stage.EXTRACTING, retryable=False)
        if status is Status.FAILED
        else None
    )
    now = at or datetime.now(UTC)
    return DocumentStatusChanged(
        document_id=document,
        tenant_id=tenant,
        correlation_id="test",
        attempt=attempt,
        occurred_at=now,
        version=version,
        filename="a.pdf",
        content_type="application/pdf",
        status=status,
        stage=Stage.INDEXED if status is Status.COMPLETED else Stage.EXTRACTING,
        progress=100 if status is Status.COMPLETED else 40,
        message=status.value,
        pages=2,
        chunks_total=3,
        chunks_embedded=3 if status is Status.COMPLETED else 0,
        error=error,
        stalled=False,
        deleted=False,
        created_at=now,
        started_at=now,
        completed_at=now if status is Status.COMPLETED else None,
        updated_at=now,
    )


@pytest.fixture
async def dispatching(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Dispatching]:
    await ensure_topics(kafka_bootstrap, topics.specs())
    settings = GatewaySettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=tmp_path,
        retry_delays_s=DELAYS_S,
        webhook_allowed_networks=["127.0.0.1/32"],
        webhook_timeout_s=5.0,
        webhook_first_attempt_timeout_s=2.0,
    )
    records = SqlRegistry(create_engine(settings.effective_database_url))
    await records.migrate()
    store = WebhookStore(records.engine, records.writing)
    sender = WebhookSender(EgressPolicy.of(settings.webhook_allowed_networks), timeout_s=5.0)
    registry = CollectorRegistry()
    broker = make_broker(kafka_bootstrap, service="webhooks", graceful_timeout=5.0)
    wire_webhooks(broker, store, sender.send, settings, registry)
    gateway = make_broker(kafka_bootstrap, service="gateway")
    redrive = delivery_redriver(gateway)
    await broker.start()
    await gateway.start()
    try:
        yield Dispatching(kafka_bootstrap, store, registry, redrive)
    finally:
        await gateway.stop()
        await broker.stop()
        await sender.aclose()
        await records.engine.dispose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver(free_port())
    yield found
    await found.stop()


async def test_a_status_change_is_delivered_signed_verified_and_once(
    dispatching: Dispatching, receiver: Receiver
) -> None:
    receiver.secret = dispatching.secret
    await receiver.start()
    url = f"http://127.0.0.1:{receiver.port}/hook"
    wants_all = await dispatching.endpoint(url, ["completed", "failed", "progress"])
    only_cancelled = await dispatching.endpoint(url + "?c", ["cancelled"])
    other_tenant = await dispatching.endpoint(url + "?o", ["completed"], tenant="someone-else")
    document, before = uuid4(), uuid4()
    await dispatching.publish(
        # From before the endpoints existed: never sent.
        snapshot(
            dispatching.tenant,
            before,
            9,
            Status.COMPLETED,
            at=datetime.now(UTC) - timedelta(hours=1),
        ),
        snapshot(dispatching.tenant, document, 1, Status.PROCESSING),
        snapshot(dispatching.tenant, document, 2, Status.COMPLETED),
        # A late event after completion, and a snapshot published again: the same event.
        snapshot(dispatching.tenant, document, 3, Status.COMPLETED),
        snapshot(dispatching.tenant, document, 2, Status.COMPLETED),
    )
    rows = await dispatching.until(
        wants_all, lambda rows: sum(r.state == "delivered" for r in rows) == 2
    )
    await asyncio.sleep(2.0)  # anything else would have come by now
    assert receiver.unverified == 0
    kinds = [payload["type"] for _, payload in receiver.received]
    assert kinds == ["document.progress", "document.completed"], receiver.received
    completed = receiver.received[1][1]
    assert completed["data"]["document_id"] == str(document)
    assert completed["data"]["status"] == "completed"
    assert completed["data"]["chunks_total"] == 3
    # One delivery row per event; the repeated completion was the same delivery.
    assert len(rows := await dispatching.deliveries(wants_all)) == 2
    assert {r.state for r in rows} == {"delivered"}
    assert [r.attempts for r in rows] == [1, 1]
    assert {f"msg_{r.id.hex}" for r in rows} == {wid for wid, _ in receiver.received}
    assert await dispatching.deliveries(only_cancelled) == []
    assert await dispatching.deliveries(other_tenant, tenant="someone-else") == []
    assert dispatching.count("docflow_webhook_deliveries_total", outcome="delivered") == 2
    assert (dispatching.count("docflow_webhook_latency_seconds_count")) == 2


async def test_an_endpoint_failing_on_purpose_is_retried_until_it_answers(
    dispatching: Dispatching, receiver: Receiver
) -> None:
    receiver.secret = dispatching.secret
    receiver.fail = [(503, b"maintenance"), (500, b"oops")]
    await receiver.start()
    endpoint = await dispatching.endpoint(f"http://127.0.0.1:{receiver.port}/", ["failed"])
    await dispatching.publish(snapshot(dispatching.tenant, uuid4(), 1, Status.FAILED))
    (row,) = await dispatching.until(endpoint, lambda rows: rows and rows[0].state == "delivered")
    assert row.attempts == 3
    assert row.response_status == 200
    assert row.response_excerpt == "thanks"
    # Each attempt with the same webhook-id: the receiver's idempotency key.
    assert receiver.seen == [f"msg_{row.id.hex}"] * 3
    assert [p["type"] for _, p in receiver.received] == ["document.failed"]
    assert dispatching.count("docflow_webhook_deliveries_total", outcome="retrying") == 2
    assert dispatching.count("docflow_retries_total", stage="webhook") == 2


async def test_an_endpoint_down_for_a_while_gets_the_delivery_once_it_is_back(
    dispatching: Dispatching, receiver: Receiver
) -> None:
    receiver.secret = dispatching.secret  # not listening yet
    endpoint = await dispatching.endpoint(f"http://127.0.0.1:{receiver.port}/", ["completed"])
    await dispatching.publish(snapshot(dispatching.tenant, uuid4(), 4, Status.COMPLETED))
    down = await dispatching.until(endpoint, lambda rows: bool(rows) and rows[0].attempts >= 2)
    assert down[0].state == "retrying"
    assert down[0].response_status is None
    await receiver.start()
    (row,) = await dispatching.until(endpoint, lambda rows: rows[0].state == "delivered")
    assert row.attempts >= 3
    assert [p["type"] for _, p in receiver.received] == ["document.completed"]


async def test_out_of_retries_it_is_dead_lettered_with_the_answer_and_can_be_redriven(
    dispatching: Dispatching, receiver: Receiver
) -> None:
    receiver.secret = dispatching.secret
    receiver.fail = [(500, b"boom: the database is on fire")] * 4
    await receiver.start()
    endpoint = await dispatching.endpoint(f"http://127.0.0.1:{receiver.port}/", ["cancelled"])
    await dispatching.publish(snapshot(dispatching.tenant, uuid4(), 2, Status.CANCELLED))
    (row,) = await dispatching.until(endpoint, lambda rows: rows and rows[0].state == "failed")
    assert row.attempts == 4
    assert row.response_status == 500
    assert row.response_excerpt == "boom: the database is on fire"
    letters = [
        letter
        for letter in await dead_letters(dispatching.bootstrap)
        if str(row.id) in letter.body.decode(errors="replace")
    ]
    assert len(letters) == 1
    assert letters[0].headers[retries.SERVICE] == "webhooks"
    assert letters[0].headers[retries.ORIGINAL_TOPIC] == topics.STATUS
    assert letters[0].error == "HTTP 500: boom: the database is on fire"
    assert json.loads(letters[0].body)["endpoint_id"] == str(endpoint)
    assert "whsec_" not in letters[0].body.decode()  # no secret on Kafka
    # Fixed: the tenant re-drives it, with the same id and body.
    await dispatching.redrive(row.delivery(redrive=True))
    (again,) = await dispatching.until(endpoint, lambda rows: rows[0].state == "delivered")
    assert again.attempts == 5
    assert [wid for wid, _ in receiver.received] == [f"msg_{row.id.hex}"]


async def test_a_delivery_to_a_private_address_is_refused_and_not_retried(
    dispatching: Dispatching,
) -> None:
    # Registered before the operator narrowed the allowed networks, say.
    endpoint = await dispatching.endpoint("http://10.1.2.3:8080/hook", ["completed"])
    await dispatching.publish(snapshot(dispatching.tenant, uuid4(), 5, Status.COMPLETED))
    (row,) = await dispatching.until(endpoint, lambda rows: rows and rows[0].state == "refused")
    assert row.attempts == 1
    assert row.response_status is None
    assert "10.1.2.3" in (row.response_excerpt or "")
    assert "not a public address" in (row.response_excerpt or "")
    assert dispatching.count("docflow_webhook_deliveries_total", outcome="refused") == 1


async def test_a_slow_endpoint_does_not_hold_the_others_and_is_delivered_on_a_retry(
    dispatching: Dispatching, receiver: Receiver
) -> None:
    receiver.secret = dispatching.secret
    receiver.stall = [4.5]  # past the first attempt's 2 s, within the whole 5 s
    await receiver.start()
    fast = Receiver(free_port(), secret=dispatching.secret)
    await fast.start()
    try:
        slow_endpoint = await dispatching.endpoint(f"http://127.0.0.1:{receiver.port}/", ["failed"])
        fast_endpoint = await dispatching.endpoint(f"http://127.0.0.1:{fast.port}/", ["completed"])
        slow_doc, fast_docs = uuid4(), [uuid4() for _ in range(5)]
        # One partition, the slow endpoint's event first: read one at a time, the
        # others would wait behind it.
        await dispatching.publish(
            snapshot(dispatching.tenant, slow_doc, 2, Status.FAILED),
            *(snapshot(dispatching.tenant, d, 3, Status.COMPLETED) for d in fast_docs),
            partition=0,
        )
        fast_rows = await dispatching.until(
            fast_endpoint, lambda rows: sum(r.state == "delivered" for r in rows) == 5
        )
        (slow,) = await dispatching.until(
            slow_endpoint, lambda rows: rows and rows[0].state == "delivered"
        )
    finally:
        await fast.stop()
    # The slow endpoint held the others at most its first attempt's 2 s (those read
    # in the same poll not at all), not until it answered 4.5 s later.
    assert all(r.attempts == 1 for r in fast_rows)
    assert len(fast.arrived) == 5
    assert max(fast.arrived) < receiver.arrived[0] + 4.0
    assert slow.attempts == 2
    assert receiver.seen == [f"msg_{slow.id.hex}"] * 2
    assert [p["type"] for _, p in receiver.received] == ["document.failed"]
    assert fast.unverified == 0
    assert dispatching.count("docflow_webhook_deliveries_total", outcome="retrying") == 1


async def test_after_a_rotation_deliveries_verify_with_either_secret(
    dispatching: Dispatching, receiver: Receiver
) -> None:
    old, new = dispatching.secret, new_secret()
    receiver.secret = old  # a receiver not switched yet
    await receiver.start()
    endpoint = await dispatching.endpoint(f"http://127.0.0.1:{receiver.port}/", ["completed"])
    until = datetime.now(UTC) + timedelta(hours=1)
    assert await dispatching.store.rotate_secret(dispatching.tenant, endpoint, new, until)
    await dispatching.publish(snapshot(dispatching.tenant, uuid4(), 3, Status.COMPLETED))
    await dispatching.until(endpoint, lambda rows: rows and rows[0].state == "delivered")
    assert receiver.unverified == 0
    ((headers, body),) = receiver.raw
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify_webhook(new, body, headers)["type"] == "document.completed"
    assert verify_webhook(old, body, headers)["type"] == "document.completed"
