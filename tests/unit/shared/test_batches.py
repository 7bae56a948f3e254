"""Batch consumers: unreadable messages and failing documents, each on its own."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from docflow_shared.batches import Handle, Item, OnFailed, dead_letter, handle_batch, read_batch
from docflow_shared.retries import Origin


class Doc(BaseModel):
    name: str


def body(name: str) -> bytes:
    return Doc(name=name).model_dump_json().encode()


def record(topic: str, offset: int) -> SimpleNamespace:
    return SimpleNamespace(topic=topic, partition=0, offset=offset, key=b"k", headers=[])


def batch(*bodies: bytes, records: tuple[Any, ...] | None = None) -> Any:
    """A FastStream batch message: its bodies, and the records they were read from."""
    if records is None:
        records = tuple(record("docs", n) for n in range(len(bodies)))
    return SimpleNamespace(body=list(bodies), raw_message=records)


class Calls:
    """Records what the mechanism handed to the consumer's functions."""

    def __init__(self, fail_on: set[str] | None = None) -> None:
        self.fail_on = fail_on or set()
        self.handled: list[list[str]] = []
        self.invalid: list[tuple[bytes, Origin | None]] = []
        self.failed: list[tuple[str, str]] = []

    async def handle(self, items: list[Item[Doc]]) -> None:
        names = [item.event.name for item in items]
        self.handled.append(names)
        if self.fail_on & set(names):
            raise RuntimeError(f"cannot handle {sorted(self.fail_on & set(names))}")

    async def on_invalid(self, body: bytes, exc: ValidationError, origin: Origin | None) -> None:
        self.invalid.append((body, origin))

    async def on_failed(self, item: Item[Doc], exc: Exception) -> None:
        self.failed.append((item.event.name, str(exc)))


async def consume(
    calls: Calls,
    message: Any,
    handle: Handle[Doc] | None = None,
    *,
    on_failed: OnFailed[Doc] | None = None,
) -> None:
    """``handle_batch`` on ``message`` with ``calls``' functions (``calls.handle``
    unless ``handle`` is given)."""
    await handle_batch(
        message,
        Doc.model_validate_json,
        handle or calls.handle,
        on_invalid=calls.on_invalid,
        on_failed=on_failed,
    )


async def test_readable_messages_come_with_their_event_and_origin_in_order() -> None:
    calls = Calls()
    items = await read_batch(
        batch(body("a"), body("b")), Doc.model_validate_json, on_invalid=calls.on_invalid
    )
    assert [item.event for item in items] == [Doc(name="a"), Doc(name="b")]
    assert [item.body for item in items] == [body("a"), body("b")]
    assert [(i.origin.topic, i.origin.offset) for i in items if i.origin] == [
        ("docs", 0),
        ("docs", 1),
    ]


async def test_without_matching_records_the_origin_is_unknown() -> None:
    calls = Calls()
    items = await read_batch(
        batch(body("a"), body("b"), records=()),
        Doc.model_validate_json,
        on_invalid=calls.on_invalid,
    )
    assert [item.origin for item in items] == [None, None]


async def test_an_unreadable_message_goes_to_on_invalid_and_not_to_the_consumer() -> None:
    calls = Calls()
    await consume(calls, batch(body("a"), b"not json", body("c")))
    assert calls.handled == [["a", "c"]]
    [(kept, origin)] = calls.invalid
    assert kept == b"not json"
    assert origin is not None
    assert origin.offset == 1


async def test_a_batch_of_only_unreadable_messages_hands_on_nothing() -> None:
    calls = Calls()
    await consume(calls, batch(b"{}", b"[]"))
    assert [body for body, _ in calls.invalid] == [b"{}", b"[]"]
    assert calls.handled == [[]]


async def test_without_on_failed_an_error_propagates_so_the_batch_comes_back() -> None:
    calls = Calls(fail_on={"b"})
    with pytest.raises(RuntimeError):
        await consume(calls, batch(body("a"), body("b")))
    assert calls.handled == [["a", "b"]]  # not item by item


async def test_with_on_failed_a_failed_batch_is_handled_again_item_by_item() -> None:
    calls = Calls(fail_on={"b"})
    await consume(calls, batch(body("a"), body("b"), body("c")), on_failed=calls.on_failed)
    assert calls.handled == [["a", "b", "c"], ["a"], ["b"], ["c"]]
    assert calls.failed == [("b", "cannot handle ['b']")]


async def test_a_lone_item_that_fails_goes_to_on_failed_without_a_second_try() -> None:
    calls = Calls(fail_on={"a"})
    await consume(calls, batch(body("a")), on_failed=calls.on_failed)
    assert calls.handled == [["a"]]
    assert [name for name, _ in calls.failed] == ["a"]


async def test_failures_the_consumer_returns_go_to_on_failed_after_the_batch() -> None:
    calls = Calls()
    later = ValueError("waits for its other chunks")

    async def handle(items: list[Item[Doc]]) -> list[tuple[Item[Doc], Exception]]:
        await calls.handle(items)
        return [(item, later) for item in items if item.event.name == "b"]

    await consume(calls, batch(body("a"), body("b")), handle, on_failed=calls.on_failed)
    assert calls.handled == [["a", "b"]]
    assert calls.failed == [("b", "waits for its other chunks")]


async def test_failures_returned_item_by_item_are_kept_with_the_errors() -> None:
    calls = Calls(fail_on={"c"})

    async def handle(items: list[Item[Doc]]) -> list[tuple[Item[Doc], Exception]]:
        await calls.handle(items)
        return [(item, ValueError("waits")) for item in items if item.event.name == "a"]

    await consume(calls, batch(body("a"), body("b"), body("c")), handle, on_failed=calls.on_failed)
    # c failed alone while going item by item; a's returned failure comes after.
    assert calls.failed == [("c", "cannot handle ['c']"), ("a", "waits")]


async def test_when_a_failure_cannot_be_recorded_the_error_propagates() -> None:
    calls = Calls(fail_on={"a"})

    async def broken(item: Item[Doc], exc: Exception) -> None:
        raise ConnectionError("Kafka unreachable")

    with pytest.raises(ConnectionError):
        await consume(calls, batch(body("a"), body("b")), on_failed=broken)


async def test_returning_failures_without_on_failed_is_a_programming_error() -> None:
    async def handle(items: list[Item[Doc]]) -> list[tuple[Item[Doc], Exception]]:
        return [(items[0], ValueError("lost"))]

    with pytest.raises(TypeError):
        await consume(Calls(), batch(body("a")), handle)


class FakeParking:
    def __init__(self) -> None:
        self.dead: list[tuple[bytes, Origin | None, str, str]] = []

    async def dead_letter(
        self, body: bytes, origin: Origin | None, reason: str, stage: str
    ) -> None:
        self.dead.append((body, origin, reason, stage))


async def test_dead_letter_keeps_an_unreadable_message_with_why() -> None:
    parking = FakeParking()
    with pytest.raises(ValidationError) as caught:
        Doc.model_validate_json(b"x" * 2000)
    origin = Origin(topic="docs", partition=2, offset=7, key=None)
    await dead_letter(parking, "status")(b"x" * 2000, caught.value, origin)  # type: ignore[arg-type]
    [(kept, where, reason, stage)] = parking.dead
    assert (kept, where, stage) == (b"x" * 2000, origin, "status")
    assert reason.startswith("unreadable message: ")
    assert len(reason) <= 500


async def test_dead_letter_without_parking_logs_and_skips(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValidationError) as caught:
        Doc.model_validate_json(b"{}")
    with caplog.at_level(logging.ERROR):
        await dead_letter(None, "status")(b"{}", caught.value, None)
    assert "unreadable message ?[?]@?" in caplog.text
