"""The gateway's and the status service's HTTP APIs, as the command line uses them.

Every call answers the decoded JSON body, or raises ``Refused`` (the server
answered with an error: its problem ``detail``) or ``Unreachable`` (no answer
at all), which the commands turn into one line and an exit code.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from docflow_cli.sse import ServerEvent, server_events

# Uploads of big files and searches (a model call) may take a while.
TIMEOUT = httpx.Timeout(120.0, connect=5.0)
# How often an upload is sent again after 429 (rate limited) or 503 (Kafka did
# not acknowledge; nothing was kept), waiting Retry-After each time.
UPLOAD_ATTEMPTS = 4


class ApiError(Exception):
    """The request could not be carried out; ``str()`` is one line for a person."""


class Unreachable(ApiError):
    """Nothing answered at the service's address."""


class Refused(ApiError):
    """The service answered with an error (a problem document: its ``detail``)."""

    def __init__(self, status: int, detail: str, code: str | None = None) -> None:
        super().__init__(f"{detail} (HTTP {status}{f', {code}' if code else ''})")
        self.status = status
        self.detail = detail
        self.code = code


def refusal(response: httpx.Response) -> Refused:
    """The error an answer carries: a problem's ``detail`` (RFC 9457), else its text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("detail"):
        code = body.get("code")
        return Refused(response.status_code, str(body["detail"]), str(code) if code else None)
    text = response.text.strip() or response.reason_phrase
    return Refused(response.status_code, text[:500])


@dataclass(frozen=True)
class Servers:
    """Where the two public services are, and the caller's API key (if any)."""

    gateway: str
    status: str
    api_key: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key} if self.api_key else {}


class Docflow:
    """One client of both services; use as ``async with Docflow(servers) as api``."""

    def __init__(self, servers: Servers, transport: httpx.AsyncBaseTransport | None = None):
        self.servers = servers
        self._http = httpx.AsyncClient(
            headers=servers.headers, timeout=TIMEOUT, transport=transport
        )

    async def __aenter__(self) -> Docflow:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    def gateway(self, path: str) -> str:
        return f"{self.servers.gateway.rstrip('/')}{path}"

    def status_service(self, path: str) -> str:
        return f"{self.servers.status.rstrip('/')}{path}"

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The answer to one request; ``Unreachable`` when there is none."""
        try:
            return await self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach {_origin(url)}: {_reason(exc)}") from exc

    async def json(self, method: str, url: str, *, ok: int = 200, **kwargs: Any) -> Any:
        """The JSON body of a ``ok`` answer; ``Refused`` for any other."""
        response = await self.request(method, url, **kwargs)
        if response.status_code != ok:
            raise refusal(response)
        return response.json()

    async def upload(self, path: Path, *, dedup: bool = True) -> dict[str, Any]:
        """Upload one file; its entry of the gateway's answer (``id``, ``status``, …)."""
        params = {} if dedup else {"dedup": "false"}
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            with path.open("rb") as stream:
                response = await self.request(
                    "POST",
                    self.gateway("/v1/documents"),
                    params=params,
                    files={"file": (path.name, stream)},
                )
            if response.status_code in (429, 503) and attempt < UPLOAD_ATTEMPTS:
                await asyncio.sleep(_retry_after(response))
                continue
            if response.status_code != 202:
                raise refusal(response)
            document: dict[str, Any] = response.json()["documents"][0]
            return document
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def document(self, document_id: str) -> dict[str, Any]:
        """A document's status (the status service's ``GET /v1/documents/{id}``)."""
        body: dict[str, Any] = await self.json(
            "GET", self.status_service(f"/v1/documents/{document_id}")
        )
        return body

    async def documents(self, **filters: Any) -> dict[str, Any]:
        """One page of the tenant's documents, newest first."""
        params = {name: value for name, value in filters.items() if value is not None}
        body: dict[str, Any] = await self.json(
            "GET", self.status_service("/v1/documents"), params=params
        )
        return body

    async def search(self, query: str, limit: int) -> dict[str, Any]:
        body: dict[str, Any] = await self.json(
            "GET", self.gateway("/v1/search"), params={"q": query, "limit": limit}
        )
        return body

    async def chunks(self, document_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        """One page of a document's extracted chunks (the gateway's ``/chunks``)."""
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body: dict[str, Any] = await self.json(
            "GET", self.gateway(f"/v1/documents/{document_id}/chunks"), params=params
        )
        return body

    async def operate(self, operation: str, document_id: str) -> dict[str, Any]:
        """``retry``, ``cancel`` or ``delete`` a document (the gateway answers 202)."""
        method, suffix = ("DELETE", "") if operation == "delete" else ("POST", f"/{operation}")
        body: dict[str, Any] = await self.json(
            method, self.gateway(f"/v1/documents/{document_id}{suffix}"), ok=202
        )
        return body

    async def reindex(self, request: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = await self.json(
            "POST", self.gateway("/v1/reindex"), ok=202, json=request
        )
        return body

    async def redrive(self, request: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = await self.json(
            "POST", self.gateway("/v1/deadletters/redrive"), json=request
        )
        return body

    async def changes(self, last_event_id: str | None = None) -> AsyncIterator[ServerEvent]:
        """The tenant's status stream (``GET /v1/documents/stream``) until it breaks off."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        url = self.status_service("/v1/documents/stream")
        try:
            # No read timeout: the stream is quiet between changes (pings every 15 s).
            async with self._http.stream(
                "GET", url, headers=headers, timeout=httpx.Timeout(None, connect=5.0)
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise refusal(response)
                async for event in server_events(response.aiter_lines()):
                    yield event
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach {_origin(url)}: {_reason(exc)}") from exc


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode()}"


def _reason(exc: httpx.TransportError) -> str:
    reason = str(exc) or type(exc).__name__
    return f"{reason} (is it running?)" if isinstance(exc, httpx.ConnectError) else reason


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(30.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
