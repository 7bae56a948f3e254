"""Uploading and following documents, against a fake of the two services' APIs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from docflow_cli import follow
from docflow_cli.api import Refused, Unreachable
from docflow_cli.board import Board, Row
from docflow_client.sse import ServerEvent
from support.waiting import await_until


def change(document_id: str, state: str, version: int, progress: int = 0) -> ServerEvent:
    body = {"id": document_id, "status": state, "stage": "extracting", "progress": progress}
    return ServerEvent("status", json.dumps({**body, "version": version}), str(version))


class FakeServices:
    """The gateway and status service as the CLI sees them: uploads answer ids by file
    name, the stream sends what is put on it (an exception breaks it off)."""

    def __init__(self, refuse: Iterable[str] = (), read: dict[str, dict[str, Any]] | None = None):
        self.refuse = set(refuse)
        self.read = read or {}
        self.stream: asyncio.Queue[ServerEvent | Exception] = asyncio.Queue()
        self.connections: list[str | None] = []
        self.on_upload: dict[str, list[ServerEvent]] = {}

    async def upload(
        self, path: Path, *, dedup: bool = True, metadata: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self.metadata = metadata
        if path.name in self.refuse:
            raise Refused(415, f"{path.name} is not a PDF, Markdown or text", "unsupported")
        for event in self.on_upload.get(path.name, []):
            # The stream tells of it before the answer arrives.
            self.stream.put_nowait(event)
            await self.stream.join()
        return {"id": path.stem, "status": "duplicate" if path.stem in self.read else "pending"}

    async def document(self, document_id: str) -> dict[str, Any]:
        if document_id not in self.read:
            raise Refused(404, "no document")
        return self.read[document_id]

    async def changes(self, last_event_id: str | None = None) -> AsyncIterator[ServerEvent]:
        self.connections.append(last_event_id)
        while True:
            item = await self.stream.get()
            if isinstance(item, Exception):
                self.stream.task_done()
                raise item
            yield item
            # The follower asks for the next event once it has applied this one.
            self.stream.task_done()


class Notes:
    def __init__(self) -> None:
        self.notices: list[str] = []
        self.finished: list[str] = []

    def changed(self, rows: Iterable[Row]) -> None:
        self.finished += [row.name for row in rows if row.done]

    def notice(self, text: str) -> None:
        self.notices.append(text)


def board_of(*names: str) -> Board:
    return Board.of([Path(name) for name in names])


async def test_it_waits_until_every_document_has_finished() -> None:
    services, notes, board = FakeServices(), Notes(), board_of("a.pdf", "b.pdf")
    # a's first change comes before its upload's answer.
    services.on_upload["a.pdf"] = [change("a", "processing", 2, 30)]
    task = asyncio.create_task(follow.upload(services, board, notes, wait=True))  # type: ignore[arg-type]
    await await_until(lambda: board.rows[1].id, timeout_s=5)
    assert [row.progress for row in board.rows] == [30, 0]
    services.stream.put_nowait(change("a", "completed", 5, 100))
    services.stream.put_nowait(change("b", "failed", 3))
    await asyncio.wait_for(task, 5)
    assert [row.status for row in board.rows] == ["completed", "failed"]
    assert notes.finished == ["a.pdf", "b.pdf"]


async def test_a_duplicate_finished_long_ago_is_read_once() -> None:
    done = {"id": "old", "status": "completed", "progress": 100, "chunks_total": 4}
    services, board = FakeServices(read={"old": done}), board_of("old.pdf")
    await asyncio.wait_for(follow.upload(services, board, Notes(), wait=True), 5)  # type: ignore[arg-type]
    [row] = board.rows
    assert (row.duplicate, row.status, row.chunks) == (True, "completed", 4)


async def test_a_refused_file_is_marked_and_the_others_go_on() -> None:
    services, board = FakeServices(refuse={"data.json"}), board_of("data.json", "a.pdf")
    await follow.upload(services, board, Notes())  # type: ignore[arg-type]
    refused, accepted = board.rows
    assert refused.refused == "data.json is not a PDF, Markdown or text"
    assert (accepted.id, accepted.status) == ("a", "pending")


async def test_it_gives_up_after_the_timeout() -> None:
    services, board = FakeServices(), board_of("a.pdf")
    with pytest.raises(follow.GaveUp, match=r"after 0\.2 s"):
        await follow.upload(services, board, Notes(), wait=True, timeout_s=0.2)  # type: ignore[arg-type]


async def test_the_stream_resumes_after_the_last_event_it_saw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(follow, "RECONNECT_S", 0.01)
    services, notes, board = FakeServices(), Notes(), board_of("a.pdf")
    for item in (
        change("a", "processing", 4, 50),
        Unreachable("cannot reach http://127.0.0.1:8001"),
        change("a", "completed", 6, 100),
    ):
        services.stream.put_nowait(item)
    await asyncio.wait_for(follow.upload(services, board, notes, wait=True), 5)  # type: ignore[arg-type]
    assert services.connections == [None, "4"]
    assert board.rows[0].status == "completed"
    assert notes.notices == [
        "status stream: cannot reach http://127.0.0.1:8001; trying again",
        "status stream back",
    ]


async def test_a_refused_stream_ends_the_wait_with_its_reason() -> None:
    services, board = FakeServices(), board_of("a.pdf")
    services.stream.put_nowait(Refused(401, "send your API key", "unauthorized"))
    with pytest.raises(Refused, match="send your API key"):
        await asyncio.wait_for(follow.upload(services, board, Notes(), wait=True), 5)  # type: ignore[arg-type]
