"""Reading Server-Sent Events from lines."""

from __future__ import annotations

from collections.abc import AsyncIterator

from docflow_client.sse import ServerEvent, server_events


async def lines(text: str) -> AsyncIterator[str]:
    for line in text.splitlines():
        yield line


async def parse(text: str) -> list[ServerEvent]:
    return [event async for event in server_events(lines(text))]


async def test_events_are_gathered_until_a_blank_line() -> None:
    stream = (
        'id: 7\r\nevent: status\r\ndata: {"a": 1}\r\n\r\n'
        ": ping - 2026-11-22 10:00:00\r\n\r\n"
        "event: deleted\ndata: first\ndata: second\n\n"
        "id: 9\ndata:no-space\n\n"
        "event: never-ends\ndata: cut off"
    )
    assert await parse(stream) == [
        ServerEvent("status", '{"a": 1}', "7"),
        # The last id stays until another is sent.
        ServerEvent("deleted", "first\nsecond", "7"),
        ServerEvent("message", "no-space", "9"),
    ]


async def test_an_event_without_data_is_not_dispatched() -> None:
    assert await parse("event: status\nid: 3\n\nretry: 100\n\n") == []


def test_data_reads_as_json() -> None:
    assert ServerEvent("status", '{"id": "x", "version": 2}', None).json() == {
        "id": "x",
        "version": 2,
    }
