"""/v1/webhooks on the gateway: registration (a whsec_ secret shown once, the URL
checked: syntax and where it resolves), the tenant's own endpoints only,
deletion, the deliveries list and re-driving one.

The dispatcher sending them, on the real broker: tests/integration/test_webhooks.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from sqlalchemy import update

from docflow_gateway.adapters.registry import Base, SqlRegistry
from docflow_gateway.adapters.webhook_store import WebhookDelivery, WebhookStore
from docflow_gateway.domain.webhooks import Delivery, Kind, webhook_id
from docflow_shared.auth import hash_key
from docflow_shared.sql import create_engine, schema_differences
from support.gateway import ClientFor, Recorder

pytestmark = pytest.mark.unit

KEYS = {"acme": [hash_key("acme-key")], "globex": [hash_key("globex-key")]}
ACME = {"X-API-Key": "acme-key"}
GLOBEX = {"X-API-Key": "globex-key"}
LOCAL = '["127.0.0.1/32"]'


def test_an_endpoint_is_registered_with_a_secret_shown_once(
    tmp_path: Path, client_for: ClientFor
) -> None:
    client = client_for(
        tmp_path / "blobs",
        Recorder(),
        auth_enabled=True,
        api_keys=KEYS,
        webhook_allowed_networks=["127.0.0.1/32"],
    )
    made = client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": ["completed", "failed", "completed"]},
        headers=ACME,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["secret"].startswith("whsec_")
    assert len(body["secret"]) > 40
    assert body["events"] == ["completed", "failed"]
    # Never shown again.
    listed = client.get("/v1/webhooks", headers=ACME).json()["webhooks"]
    assert [w["id"] for w in listed] == [body["id"]]
    assert "secret" not in listed[0]
    one = client.get(f"/v1/webhooks/{body['id']}", headers=ACME)
    assert one.status_code == 200
    assert "secret" not in one.json()
    # Another tenant sees none of it.
    assert client.get("/v1/webhooks", headers=GLOBEX).json() == {"webhooks": []}
    assert client.get(f"/v1/webhooks/{body['id']}", headers=GLOBEX).status_code == 404
    assert client.delete(f"/v1/webhooks/{body['id']}", headers=GLOBEX).status_code == 404
    # Every kind when none is named.
    every = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/"}, headers=ACME)
    assert every.json()["events"] == [k.value for k in Kind]
    assert client.delete(f"/v1/webhooks/{body['id']}", headers=ACME).status_code == 204
    assert client.get(f"/v1/webhooks/{body['id']}", headers=ACME).status_code == 404
    assert len(client.get("/v1/webhooks", headers=ACME).json()["webhooks"]) == 1


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1:9/hook", "webhook-url-refused"),
        ("http://localhost:9/hook", "webhook-url-refused"),
        ("http://10.0.0.1/hook", "webhook-url-refused"),
        ("http://169.254.169.254/latest/meta-data", "webhook-url-refused"),
        ("http://[::1]/hook", "webhook-url-refused"),
        ("http://[::ffff:127.0.0.1]/hook", "webhook-url-refused"),
        ("http://name.that.does.not.resolve.invalid/", "webhook-url-refused"),
        ("gopher://example.com/", "invalid-webhook-url"),
        ("https://user:secret@example.com/", "invalid-webhook-url"),
    ],
)
def test_an_endpoint_at_a_forbidden_or_malformed_url_is_refused(
    tmp_path: Path, client_for: ClientFor, url: str, code: str
) -> None:
    client = client_for(tmp_path / "blobs", Recorder())
    refused = client.post("/v1/webhooks", json={"url": url})
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == code
    assert client.get("/v1/webhooks").json() == {"webhooks": []}


def test_bad_requests_are_422(tmp_path: Path, client_for: ClientFor) -> None:
    client = client_for(tmp_path / "blobs", Recorder(), webhook_allowed_networks=["127.0.0.1"])
    for body in (
        {"url": "http://127.0.0.1/", "events": []},
        {"url": "http://127.0.0.1/", "events": ["deleted"]},
        {"url": "http://127.0.0.1/", "secret": "mine"},
        {"url": "http://127.0.0.1/" + "x" * 3000},
    ):
        assert client.post("/v1/webhooks", json=body).status_code == 422, body
    made = client.post("/v1/webhooks", json={"url": "http://127.0.0.1/"}).json()
    assert client.get(f"/v1/webhooks/{made['id']}/deliveries?limit=0").status_code == 422


def test_a_tenant_has_at_most_the_configured_number_of_endpoints(
    tmp_path: Path, client_for: ClientFor
) -> None:
    client = client_for(
        tmp_path / "blobs",
        Recorder(),
        webhook_allowed_networks=["127.0.0.1"],
        webhook_max_endpoints=2,
    )
    for _ in range(2):
        assert client.post("/v1/webhooks", json={"url": "http://127.0.0.1/"}).status_code == 201
    third = client.post("/v1/webhooks", json={"url": "http://127.0.0.1/"})
    assert third.status_code == 409
    assert third.json()["code"] == "too-many-webhooks"


def test_deliveries_are_listed_newest_first_and_one_is_redriven(
    tmp_path: Path, client_for: ClientFor, database_url: str
) -> None:
    redriven: list[Delivery] = []

    async def redrive(delivery: Delivery) -> None:
        redriven.append(delivery)

    client = client_for(
        tmp_path / "blobs",
        Recorder(),
        auth_enabled=True,
        api_keys=KEYS,
        webhook_allowed_networks=["127.0.0.1/32"],
        redrive_delivery=redrive,
    )
    endpoint = UUID(
        client.post("/v1/webhooks", json={"url": "http://127.0.0.1/"}, headers=ACME).json()["id"]
    )
    deliveries = [
        Delivery(
            delivery_id=uuid4(),
            endpoint_id=endpoint,
            tenant_id="acme",
            document_id=uuid4(),
            kind=Kind.COMPLETED,
            occurred_at=datetime.now(UTC),
            body=f'{{"n":{n}}}',
        )
        for n in range(3)
    ]

    async def record() -> None:
        store = WebhookStore(create_engine(database_url))
        for delivery in deliveries:
            await store.attempted(delivery, "retrying", None, "connection refused")
        await store.attempted(deliveries[0], "failed", 503, "down for maintenance")
        await store.engine.dispose()

    asyncio.run(record())
    listed = client.get(f"/v1/webhooks/{endpoint}/deliveries?limit=2", headers=ACME)
    assert listed.status_code == 200
    rows = listed.json()["deliveries"]
    assert [r["id"] for r in rows] == [str(d.delivery_id) for d in deliveries[:0:-1]]
    everything = client.get(f"/v1/webhooks/{endpoint}/deliveries", headers=ACME).json()
    failed = everything["deliveries"][-1]
    assert failed["state"] == "failed"
    assert failed["attempts"] == 2
    assert failed["response_status"] == 503
    assert failed["response_excerpt"] == "down for maintenance"
    assert failed["webhook_id"] == webhook_id(deliveries[0].delivery_id)
    # Another tenant can neither see nor re-drive them.
    assert client.get(f"/v1/webhooks/{endpoint}/deliveries", headers=GLOBEX).status_code == 404
    path = f"/v1/webhooks/{endpoint}/deliveries/{deliveries[0].delivery_id}/redrive"
    assert client.post(path, headers=GLOBEX).status_code == 404
    assert client.post(f"{path[: -len('/redrive')]}x/redrive", headers=ACME).status_code == 422
    unknown = f"/v1/webhooks/{endpoint}/deliveries/{uuid4()}/redrive"
    assert client.post(unknown, headers=ACME).status_code == 404
    again = client.post(path, headers=ACME)
    assert again.status_code == 202
    assert again.json()["state"] == "pending"
    assert [(d.delivery_id, d.body, d.redrive) for d in redriven] == [
        (deliveries[0].delivery_id, '{"n":0}', True)
    ]


async def test_the_migrations_make_the_webhook_tables_as_the_code_declares_them(
    database_url: str,
) -> None:
    records = SqlRegistry(create_engine(database_url))
    await records.migrate()
    async with records.engine.connect() as connection:
        assert await connection.run_sync(schema_differences, Base.metadata) == []
        tables = await connection.run_sync(
            lambda sync: set(__import__("sqlalchemy").inspect(sync).get_table_names())
        )
    await records.engine.dispose()
    assert {"webhook_endpoints", "webhook_deliveries"} <= tables


def test_a_secret_is_rotated_with_an_overlap(
    tmp_path: Path, client_for: ClientFor, database_url: str
) -> None:
    client = client_for(
        tmp_path / "blobs",
        Recorder(),
        auth_enabled=True,
        api_keys=KEYS,
        webhook_allowed_networks=["127.0.0.1/32"],
        webhook_secret_overlap_s=3600,
    )
    made = client.post("/v1/webhooks", json={"url": "http://127.0.0.1/"}, headers=ACME).json()
    path = f"/v1/webhooks/{made['id']}/secret"
    assert client.post(path, headers=GLOBEX).status_code == 404
    assert client.post(f"/v1/webhooks/{uuid4()}/secret", headers=ACME).status_code == 404
    before = datetime.now(UTC)
    rotated = client.post(path, headers=ACME)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["id"] == made["id"]
    assert body["secret"].startswith("whsec_")
    assert body["secret"] != made["secret"]
    until = datetime.fromisoformat(body["previous_secret_expires_at"])
    assert before + timedelta(seconds=3590) < until < before + timedelta(seconds=3700)
    assert "secret" not in client.get(f"/v1/webhooks/{made['id']}", headers=ACME).json()

    async def signing() -> tuple[str, ...]:
        store = WebhookStore(create_engine(database_url))
        target = await store.target("acme", UUID(made["id"]))
        await store.engine.dispose()
        assert target is not None
        return target.signing_secrets(datetime.now(UTC))

    assert asyncio.run(signing()) == (body["secret"], made["secret"])
    again = client.post(path, headers=ACME).json()
    assert asyncio.run(signing()) == (again["secret"], body["secret"])


def test_deliveries_are_listed_a_page_at_a_time(
    tmp_path: Path, client_for: ClientFor, database_url: str
) -> None:
    client = client_for(tmp_path / "blobs", Recorder(), webhook_allowed_networks=["127.0.0.1"])
    endpoint = UUID(client.post("/v1/webhooks", json={"url": "http://127.0.0.1/"}).json()["id"])
    made = [uuid4() for _ in range(7)]

    async def record() -> None:
        store = WebhookStore(create_engine(database_url))
        for n, delivery_id in enumerate(made):
            delivery = Delivery(
                delivery_id=delivery_id,
                endpoint_id=endpoint,
                tenant_id="default",
                document_id=uuid4(),
                kind=Kind.COMPLETED,
                occurred_at=datetime.now(UTC),
                body=f'{{"n":{n}}}',
            )
            await store.attempted(delivery, "delivered", 200, "")
        await store.engine.dispose()

    asyncio.run(record())
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = f"?limit=3&cursor={cursor}" if cursor else "?limit=3"
        page = client.get(f"/v1/webhooks/{endpoint}/deliveries{query}")
        assert page.status_code == 200, page.text
        seen += [d["id"] for d in page.json()["deliveries"]]
        pages += 1
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(d) for d in reversed(made)]
    exact = client.get(f"/v1/webhooks/{endpoint}/deliveries?limit=7").json()
    assert (len(exact["deliveries"]), exact["next_cursor"]) == (7, None)
    for bad in ("abc", "-1", "1" * 19):
        url = f"/v1/webhooks/{endpoint}/deliveries?cursor={bad}"
        assert client.get(url).status_code == 422, bad


async def test_old_deliveries_are_pruned_on_either_database(database_url: str) -> None:
    records = SqlRegistry(create_engine(database_url))
    await records.migrate()
    store = WebhookStore(records.engine, records.writing)
    endpoint = await store.add_endpoint("acme", "https://a.example/", ["completed"], None, "s")
    states = ["delivered", "failed", "refused", "retrying", "pending", "delivered"]
    for state in states:
        delivery = Delivery(
            delivery_id=uuid4(),
            endpoint_id=endpoint.id,
            tenant_id="acme",
            document_id=uuid4(),
            kind=Kind.COMPLETED,
            occurred_at=datetime.now(UTC),
            body="{}",
        )
        await store.attempted(delivery, state, None, None)
    # All but the last were last attempted 40 days ago.
    rows = await store.deliveries("acme", endpoint.id, 10)
    async with store.engine.begin() as connection:
        await connection.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.seq != rows[0].seq)
            .values(last_attempt_at=datetime.now(UTC) - timedelta(days=40))
        )
    assert await store.prune(datetime.now(UTC) - timedelta(days=30), batch=2) == 2
    assert await store.prune(datetime.now(UTC) - timedelta(days=30)) == 1
    left = await store.deliveries("acme", endpoint.id, 10)
    await records.engine.dispose()
    assert sorted(r.state for r in left) == ["delivered", "pending", "retrying"]
    assert rows[0].seq in {r.seq for r in left}
