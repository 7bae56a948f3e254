"""Uploading files and following their documents on the status stream."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from docflow_cli.api import ApiError, Docflow, Refused, Unreachable
from docflow_cli.board import Board, Row

# Seconds between attempts to reach the status stream again.
RECONNECT_S = 1.0


class View(Protocol):
    def changed(self, rows: Iterable[Row]) -> None: ...

    def notice(self, text: str) -> None: ...


class GaveUp(Exception):
    """The documents did not all finish within the time given."""


async def upload(
    api: Docflow,
    board: Board,
    view: View,
    *,
    dedup: bool = True,
    wait: bool = False,
    timeout_s: float | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Upload every file of ``board`` one by one; with ``wait``, follow the documents
    until each has finished (or ``GaveUp`` after ``timeout_s``).

    ``Unreachable`` (the gateway is not there) stops the upload; a file the
    gateway refuses is marked so and the others go on.
    """
    finished = asyncio.Event()

    def changed(rows: Iterable[Row]) -> None:
        view.changed(rows)
        if board.all_done:
            finished.set()

    # Open before the first upload: its first changes may come at once. (The
    # stream also starts with the last minute's changes, so nothing is lost
    # while it connects.)
    stream = asyncio.create_task(_follow(api, board, view, changed)) if wait else None
    try:
        for row in board.rows:
            try:
                answer = await api.upload(row.path, dedup=dedup, metadata=metadata)
            except Refused as exc:
                changed(board.refuse(row, exc.detail))
                continue
            changed(board.accept(row, answer))
        if stream is None:
            return
        # A duplicate finished long ago never comes on the stream: read each once.
        for row in board.rows:
            if row.id and not row.done and not row.version:
                with contextlib.suppress(Refused):  # 404: not projected yet; the stream tells
                    changed(board.update(await api.document(row.id)))
        changed([])
        waiting = asyncio.create_task(finished.wait())
        done, _ = await asyncio.wait(
            {waiting, stream}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        waiting.cancel()
        if stream in done:
            stream.result()  # the stream's fatal error (a refusal, such as 401)
        if not done:
            raise GaveUp(f"gave up waiting after {timeout_s:g} s; the documents go on")
    finally:
        if stream is not None:
            stream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stream


async def _follow(
    api: Docflow, board: Board, view: View, changed: Callable[[Iterable[Row]], None]
) -> None:
    """Apply the tenant's status stream to ``board`` for ever, reconnecting where it
    broke off (``Last-Event-ID``) when the status service goes away."""
    last_id: str | None = None
    lost = False
    while True:
        try:
            async for event in api.changes(last_id):
                if lost:
                    view.notice("status stream back")
                    lost = False
                last_id = event.id or last_id
                body = event.json()
                if event.event == "status":
                    changed(board.update(body, int(body["version"])))
                elif event.event == "deleted":
                    changed(board.deleted(str(body["id"])))
        except Unreachable as exc:
            if not lost:
                view.notice(f"status stream: {exc}; trying again")
                lost = True
        await asyncio.sleep(RECONNECT_S)


async def reindex(
    api: Docflow, url: str, timeout_s: float, say: Callable[[str], None]
) -> dict[str, Any]:
    """Poll a re-embedding's status until it is over (the status service has no
    stream for it); each change is said once."""
    deadline = time.monotonic() + timeout_s
    said = ""
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            status = await api.json("GET", url)
        except Unreachable as exc:
            say(f"{exc}; still trying")
        except ApiError:
            pass  # 404 until the operation is projected
        else:
            line = f"[{status['progress']:3d}%] {status['status']}: {status['message']}"
            if line != said:
                say(line)
                said = line
            if status["status"] in ("completed", "failed"):
                return status
        await asyncio.sleep(0.5)
    say("gave up waiting; the operation goes on")
    return status
