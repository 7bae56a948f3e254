"""The gateway's and the status service's HTTP APIs, as the command line uses
them: the Python client (``docflow_client``), its answers as plain JSON
values for the board and ``--json``.

Every call answers the decoded JSON body, or raises ``Refused`` (the server
answered with an error: its problem ``detail``) or ``Unreachable`` (no answer
at all), which the commands turn into one line and an exit code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from docflow_client import AsyncDocflow
from docflow_client.errors import DocflowError as ApiError
from docflow_client.errors import ProblemError as Refused
from docflow_client.errors import Unreachable
from docflow_client.errors import problem_of as refusal
from docflow_client.models import EmbeddingSpec, SearchMode
from docflow_client.sse import ServerEvent

__all__ = ["ApiError", "Docflow", "Refused", "Servers", "Unreachable", "refusal"]


class Mode(StrEnum):
    """How ``docflow search`` searches: by meaning and words, meaning, or words."""

    hybrid = "hybrid"
    dense = "dense"
    keyword = "keyword"


@dataclass(frozen=True)
class Servers:
    """Where the two public services are, and the caller's API key (if any)."""

    gateway: str
    status: str
    api_key: str | None = None


def _plain(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


class Docflow:
    """The client of both services; use as ``async with Docflow(servers) as api``."""

    def __init__(self, servers: Servers, transport: httpx.AsyncBaseTransport | None = None):
        self.servers = servers
        self.client = AsyncDocflow(
            servers.gateway, servers.status, api_key=servers.api_key, transport=transport
        )

    async def __aenter__(self) -> Docflow:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def json(self, method: str, url: str) -> Any:
        """The JSON body of a 200 answer from the status service (``url`` may be absolute)."""
        return await self.client.send("status", method, url)

    async def upload(
        self, path: Path, *, dedup: bool = True, metadata: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Upload one file; its entry of the gateway's answer (``id``, ``status``, …)."""
        (accepted,) = await self.client.upload(path, dedup=dedup, metadata=metadata)
        return _plain(accepted)

    async def document(self, document_id: str) -> dict[str, Any]:
        return _plain(await self.client.status(document_id))

    async def documents(self, **filters: Any) -> dict[str, Any]:
        return _plain(await self.client.documents(**filters))

    async def search(
        self, query: str, limit: int, mode: SearchMode = "hybrid", **filters: Any
    ) -> dict[str, Any]:
        return _plain(await self.client.search(query, limit=limit, mode=mode, **filters))

    async def chunks(self, document_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        return _plain(await self.client.chunks(document_id, limit=limit, cursor=cursor))

    async def operate(self, operation: str, document_id: str) -> dict[str, Any]:
        """``retry``, ``cancel`` or ``delete`` a document (the gateway answers 202)."""
        operations = {
            "retry": self.client.retry,
            "cancel": self.client.cancel,
            "delete": self.client.delete,
        }
        return _plain(await operations[operation](document_id))

    async def reindex(self, request: dict[str, Any]) -> dict[str, Any]:
        embedding = EmbeddingSpec.model_validate(request["embedding"])
        accepted = await self.client.reindex(embedding, document_ids=request.get("document_ids"))
        return _plain(accepted)

    async def redrive(self, request: dict[str, Any]) -> dict[str, Any]:
        return _plain(await self.client.redrive(**request))

    async def changes(self, last_event_id: str | None = None) -> AsyncIterator[ServerEvent]:
        """The tenant's status stream (``GET /v1/documents/stream``) until it breaks off."""
        async for event in self.client.events(last_event_id=last_event_id):
            yield event
