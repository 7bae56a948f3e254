"""Server-Sent Events read from a stream of lines (the WHATWG event-stream format)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServerEvent:
    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data)


async def server_events(lines: AsyncIterable[str]) -> AsyncIterator[ServerEvent]:
    """Each event of the stream: fields gathered until a blank line; comments
    (pings) and events without data are skipped, as browsers do."""
    event, last_id = "", None
    data: list[str] = []
    async for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            if data:
                yield ServerEvent(event or "message", "\n".join(data), last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            # The id stays until another is sent (the spec's "last event ID").
            last_id = value
