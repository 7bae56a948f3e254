"""Hostile messages (issue 20): no body, header or field value makes a consumer
raise outside its failure path, and a message that keeps failing is given up."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faststream import BaseMiddleware
from faststream.kafka import KafkaMessage, KafkaRouter, TestKafkaBroker
from faststream.kafka.parser import AioKafkaBatchParser, AioKafkaParser
from pydantic import BaseModel, ValidationError

from docflow_shared import decoding, retries
from docflow_shared.batches import Item, Poison, handle_batch
from docflow_shared.events import (
    DocumentProgressed,
    DocumentUploaded,
    ErrorInfo,
    Event,
    Stage,
    parse_any,
    parse_event,
)
from docflow_shared.failures import FailDocumentOnError
from docflow_shared.logthrottle import Repeats
from docflow_shared.messaging import make_broker, subscriber
from docflow_shared.redeliveries import Redeliveries
from docflow_shared.retries import Origin, header_int, register_retries
from support.uploads import an_upload

DEEP = b"[" * 100_000


# Bodies ---------------------------------------------------------------------


@pytest.mark.parametrize("parse", [DocumentUploaded.model_validate_json, parse_event, parse_any])
def test_deep_nesting_is_a_value_error_not_a_recursion_error(parse: Any) -> None:
    with pytest.raises(ValueError, match="recursion limit"):
        decoding.read(parse, DEEP)


def test_loads_refuses_deep_nesting_and_huge_bodies_with_unreadable() -> None:
    with pytest.raises(decoding.Unreadable):
        decoding.loads(DEEP)
    with pytest.raises(decoding.Unreadable):
        decoding.loads(b'"' + b"x" * decoding.MAX_BODY_BYTES + b'"')
    assert decoding.loads(b'{"a": [1]}') == {"a": [1]}


def test_a_body_over_the_size_limit_is_not_parsed() -> None:
    body = b" " * (decoding.MAX_BODY_BYTES + 1)
    with pytest.raises(decoding.Unreadable, match="more than"):
        decoding.read(DocumentUploaded.model_validate_json, body)


async def test_the_failure_middleware_dead_letters_deep_nesting_instead_of_raising() -> None:
    parking = FakeParking()
    middleware = FailDocumentOnError(
        Recorder(),
        stage=Stage.EXTRACTING,
        service="extractor",
        parking=parking,  # type: ignore[arg-type]
    )
    await middleware.fail(SimpleNamespace(body=DEEP), RecursionError("deep"))
    [(body, reason)] = parking.dead
    assert body == DEEP
    assert reason.startswith("unreadable message")


class Doc(BaseModel):
    name: str


async def test_a_typed_subscriber_reads_any_bytes_inside_the_middleware() -> None:
    """FastStream's own decoder (json.loads) raised RecursionError on these."""
    broker = make_broker("127.0.0.1:1", service="test")
    seen: list[str] = []

    class Catch(BaseMiddleware):
        async def consume_scope(self, call_next: Any, msg: Any) -> Any:
            try:
                return await call_next(msg)
            except ValueError as exc:
                seen.append(type(exc).__name__)
                return None

    router = KafkaRouter(middlewares=[Catch])

    @subscriber(router, "docs", group_id="g")
    async def handle(doc: Doc) -> None:
        seen.append(doc.name)

    broker.include_router(router)
    async with TestKafkaBroker(broker) as br:
        await br.publish(DEEP, topic="docs", headers={"content-type": "application/json"})
        await br.publish(DEEP, topic="docs")
        await br.publish(b'{"name": "fine"}', topic="docs")
    assert seen == ["Unreadable", "ValidationError", "fine"]


async def test_headers_that_are_not_utf8_are_read_with_replacement() -> None:
    record = ConsumerRecord(
        topic="docs",
        partition=0,
        offset=3,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=b"{}",
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=2,
        headers=((retries.RETRIES, b"\xff\xfe"), ("empty", None)),  # type: ignore[arg-type]
    )
    parser = AioKafkaParser(msg_class=KafkaMessage, regex=None)
    with pytest.raises((UnicodeDecodeError, AttributeError)):
        await parser.parse_message(record)
    message = await decoding.parse(record, parser.parse_message)
    assert message.headers[retries.RETRIES] == "\ufffd\ufffd"
    batch = await decoding.parse(
        (record, record), AioKafkaBatchParser(msg_class=KafkaMessage, regex=None).parse_batch
    )
    assert len(batch.body) == 2
    assert Origin.of_record(record).retries == 0


# Event fields ---------------------------------------------------------------


def progress(**fields: Any) -> bytes:
    upload = an_upload()
    body = json.loads(
        DocumentProgressed.caused_by(upload, stage=Stage.EXTRACTING, done=1).model_dump_json()
    )
    body.update(fields)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "fields",
    [
        {"done": 10**20},
        {"total": 2**31},
        {"attempt": 2**40},
        {"tenant_id": "t" * 65},
        {"tenant_id": ""},
        {"tenant_id": "../other"},
        {"tenant_id": "a b"},
        {"correlation_id": "c" * 201},
        {"occurred_at": "0001-01-01T00:00:00+05:00"},
    ],
    ids=lambda f: next(iter(f)),
)
def test_an_event_that_would_not_fit_the_read_model_is_unreadable(fields: dict) -> None:
    with pytest.raises(ValidationError):
        parse_any(progress(**fields))


@pytest.mark.parametrize("tenant", ["default", "t1", "acme-corp_2", "T" * 64])
def test_well_formed_tenants_are_read(tenant: str) -> None:
    assert parse_any(progress(tenant_id=tenant)).tenant_id == tenant


def test_the_largest_counts_a_column_holds_are_read() -> None:
    event = parse_any(progress(done=2**31 - 1, total=2**31 - 1))
    assert isinstance(event, DocumentProgressed)
    assert event.done == 2**31 - 1


def test_long_error_text_is_cut_to_fit_the_status_message() -> None:
    error = ErrorInfo(code="internal", message="x" * 10_000, stage=Stage.EMBEDDING, retryable=True)
    assert len(error.message) <= 1000


def test_a_time_within_utc_range_with_an_offset_is_read() -> None:
    when = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    assert parse_any(progress(occurred_at=when.isoformat())).occurred_at == when


async def test_an_envelope_with_a_bad_tenant_is_dead_lettered_not_failed() -> None:
    """A DocumentFailed for it could not even be made (and would not fit the read model)."""
    publish, parking = Recorder(), FakeParking()
    middleware = FailDocumentOnError(
        publish,
        stage=Stage.EXTRACTING,
        service="extractor",
        parking=parking,  # type: ignore[arg-type]
    )
    body = progress(tenant_id="t" * 500, attempt=0)
    await middleware.fail(SimpleNamespace(body=body), ValueError("bad"))
    assert publish.events == []
    assert [b for b, _ in parking.dead] == [body]


# Headers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2),
        ("", 0),
        ("lots", 0),
        ("-1", 0),
        ("1e3", 0),
        ("١", 0),  # a digit, but not an ASCII one
        ("99999999999999999999999999", 0),
        ("999", retries.topics.RETRY_LEVELS),
    ],
)
def test_the_retries_header_never_raises(value: str, expected: int) -> None:
    origin = Origin(topic="t", partition=0, offset=0, key=None, headers={retries.RETRIES: value})
    assert origin.retries == expected


def test_header_int_is_bounded() -> None:
    assert header_int({"h": "12"}, "h", 7, high=10) == 10
    assert header_int({}, "h", 7, high=10) == 7


def test_a_dead_letter_of_a_message_with_partial_origin_headers_does_not_raise() -> None:
    parking = retries.Parking(make_broker("127.0.0.1:1", service="t"), service="t")
    origin = Origin(
        topic="docflow.retry.t.0.v1",
        partition=0,
        offset=1,
        key=None,
        headers={retries.ORIGINAL_TOPIC: "docflow.document.uploaded.v1"},
    )
    headers = parking._headers(origin, "why", "extracting", retries=0)
    assert headers[retries.ORIGINAL_PARTITION] == "?"


@pytest.mark.parametrize("due", ["garbage", "", "99999999999999999999"])
async def test_a_parked_message_with_a_garbage_due_time_is_handled_at_once(due: str) -> None:
    broker = make_broker("127.0.0.1:1", service="t")
    parking = retries.Parking(broker, service="t", delays_s=[0.1])
    handled: list[bytes] = []

    async def handler(body: bytes) -> None:
        handled.append(body)

    router = KafkaRouter()
    register_retries(router, parking=parking, group_id="g", handlers={"docs": handler})
    broker.include_router(router)
    async with TestKafkaBroker(broker) as br:
        await br.publish(
            b"body",
            topic=retries.topics.retry_topic("t", 0),
            headers={retries.DUE_MS: due, retries.ORIGINAL_TOPIC: "docs"},
        )
    assert handled == [b"body"]


# The redelivery cap ---------------------------------------------------------


def origin(offset: int = 5) -> Origin:
    return Origin(topic="docs", partition=1, offset=offset, key=None)


def test_a_message_is_given_up_after_the_limit_of_redeliveries() -> None:
    redeliveries = Redeliveries(2)
    assert [redeliveries.exhausted(origin()) for _ in range(4)] == [False, False, True, True]
    redeliveries.forget(origin())
    assert redeliveries.exhausted(origin()) is False
    assert Redeliveries(0).exhausted(origin()) is True


async def test_a_failure_path_that_keeps_raising_is_dead_lettered_after_the_cap() -> None:
    async def refuses(event: Event) -> None:
        raise ValueError("the event cannot be published")

    parking = FakeParking(limit=2)
    middleware = FailDocumentOnError(
        refuses,
        stage=Stage.EXTRACTING,
        service="extractor",
        parking=parking,  # type: ignore[arg-type]
    )
    body = an_upload().model_dump_json().encode()
    message = SimpleNamespace(body=body, raw_message=record_of(7))
    for _ in range(2):
        with pytest.raises(ValueError, match="cannot be published"):
            await middleware.fail(message, RuntimeError("bug"))
    await middleware.fail(message, RuntimeError("bug"))
    # The dead letter for the bug itself, then the message given up.
    assert [reason.split(":")[0] for _, reason in parking.dead][
        -1
    ] == "failing it raised ValueError"


async def test_an_outage_in_the_failure_path_is_never_given_up() -> None:
    async def down(event: Event) -> None:
        raise ConnectionError("Kafka unreachable")

    parking = FakeParking(limit=0)
    middleware = FailDocumentOnError(
        down,
        stage=Stage.EXTRACTING,
        service="extractor",
        parking=parking,  # type: ignore[arg-type]
    )
    message = SimpleNamespace(body=an_upload().model_dump_json().encode(), raw_message=record_of(7))
    for _ in range(5):
        with pytest.raises(ConnectionError):
            await middleware.fail(message, RuntimeError("bug"))


def batch(names: list[str]) -> Any:
    bodies = [Doc(name=n).model_dump_json().encode() for n in names]
    return SimpleNamespace(body=bodies, raw_message=tuple(record_of(i) for i in range(len(names))))


class Projector:
    """Fails on ``poison`` with ``error``, as the status projector did on a huge count."""

    def __init__(self, poison: str, error: Exception) -> None:
        self.poison, self.error = poison, error
        self.done: list[str] = []
        self.given_up: list[str] = []

    async def handle(self, items: list[Item[Doc]]) -> None:
        if any(item.event.name == self.poison for item in items):
            raise self.error
        self.done += [item.event.name for item in items]

    async def on_poison(self, item: Item[Doc], exc: Exception) -> None:
        self.given_up.append(item.event.name)


async def invalid(body: bytes, exc: ValueError, origin: Origin | None) -> None:
    raise AssertionError("every message here is readable")


async def test_a_poison_message_in_a_batch_is_given_up_alone_after_the_cap() -> None:
    projector = Projector("bad", OverflowError("Python int too large to convert to SQLite INTEGER"))
    poison = Poison(Redeliveries(2), projector.on_poison)
    for _ in range(2):  # the first delivery and the first redelivery
        with pytest.raises(OverflowError):
            await handle_batch(
                batch(["a", "bad", "c"]),
                Doc.model_validate_json,
                projector.handle,
                on_invalid=invalid,
                poison=poison,
            )
    await handle_batch(
        batch(["a", "bad", "c"]),
        Doc.model_validate_json,
        projector.handle,
        on_invalid=invalid,
        poison=poison,
    )
    assert projector.given_up == ["bad"]
    assert projector.done[-2:] == ["a", "c"]


async def test_an_outage_rewinds_the_batch_however_long_it_lasts() -> None:
    projector = Projector("a", ConnectionError("database unreachable"))
    poison = Poison(Redeliveries(1), projector.on_poison)
    for _ in range(10):
        with pytest.raises(ConnectionError):
            await handle_batch(
                batch(["a", "b"]),
                Doc.model_validate_json,
                projector.handle,
                on_invalid=invalid,
                poison=poison,
            )
    assert projector.given_up == []


def test_database_errors_that_say_it_is_unavailable_are_outages() -> None:
    from sqlalchemy.exc import DataError, OperationalError

    from docflow_shared.sql import unavailable

    assert unavailable(OperationalError("SELECT 1", {}, Exception("connection refused")))
    assert not unavailable(DataError("INSERT", {}, Exception("value too long")))
    assert not unavailable(OverflowError("int too large"))


# Log volume -----------------------------------------------------------------


def test_repeated_failures_are_logged_a_few_times_then_counted() -> None:
    now = [0.0]
    repeats = Repeats(burst=3, interval_s=10.0, clock=lambda: now[0])

    def record(msg: str = "document %s: unexpected error") -> logging.LogRecord:
        return logging.LogRecord("docflow", logging.ERROR, "f", 1, msg, ("d",), None)

    passed = [repeats.filter(record()) for _ in range(100)]
    assert passed.count(True) == 3
    assert repeats.filter(record("another kind")) is True
    now[0] = 11.0
    later = record()
    assert repeats.filter(later) is True
    assert later.getMessage() == "document d: unexpected error (97 more like this were not logged)"
    info = logging.LogRecord("docflow", logging.INFO, "f", 1, "fine", (), None)
    assert all(repeats.filter(info) for _ in range(10))


# Fakes ----------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)


class FakeParking:
    max_retries = 0

    def __init__(self, limit: int = 5) -> None:
        self.dead: list[tuple[bytes, str]] = []
        self.redeliveries = Redeliveries(limit)

    async def dead_letter(
        self, body: bytes, origin: Origin | None, reason: str, stage: str
    ) -> None:
        self.dead.append((body, reason))


def record_of(offset: int) -> SimpleNamespace:
    return SimpleNamespace(
        topic="docs", partition=0, offset=offset, key=str(uuid.uuid4()).encode(), headers=[]
    )


class Published:
    def __init__(self) -> None:
        self.messages: list[tuple[bytes, dict[str, str]]] = []

    async def publish(self, body: bytes, *, key: bytes | None, headers: dict[str, str]) -> None:
        self.messages.append((body, headers))


async def test_a_dead_letter_always_fits_in_a_kafka_message() -> None:
    parking = retries.Parking(make_broker("127.0.0.1:1", service="t"), service="t")
    parking._dead = Published()  # type: ignore[assignment]
    huge_headers = {f"h{n}": "x" * 1000 for n in range(100)}
    where = Origin(topic="docs", partition=0, offset=1, key=None, headers=huge_headers)
    await parking.dead_letter(b"[" * (1024 * 1024), where, "why", "status")
    [(body, headers)] = parking._dead.messages  # type: ignore[attr-defined]
    assert len(body) + sum(len(k) + len(v) for k, v in headers.items()) < 1000 * 1024
    assert headers[retries.TRUNCATED] == str(1024 * 1024)
    assert headers[retries.ORIGINAL_TOPIC] == "docs"


def test_a_dead_letter_nobody_could_read_is_listed_without_an_envelope() -> None:
    # The gateway lists the dead-letter topic (GET /v1/deadletters): the poison
    # kept there must not make the listing fail (it answered 503 with
    # "maximum recursion depth exceeded" before).
    from docflow_shared.deadletters import _envelope

    assert _envelope(b"[" * 100_000) == (None, None)
    assert _envelope(b"\xff\xfe") == (None, None)
    document_id = uuid.uuid4()
    body = json.dumps({"document_id": str(document_id), "tenant_id": "acme"}).encode()
    assert _envelope(body) == (document_id, "acme")
