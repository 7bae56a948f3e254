"""The status service over HTTP, for the preconditions of document operations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import httpx

# The caller's credentials go along, so the status service applies the same
# tenant rules to the gateway's question as to the caller's own.
FORWARDED_HEADERS = ("authorization", "x-api-key", "x-correlation-id")


class StatusUnavailable(Exception):
    """The status service did not answer as expected."""


class HttpStatusReader:
    """Reads one document's status from the status service, as the caller."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, headers: Mapping[str, str]):
        self._client = client
        self._base = base_url.rstrip("/")
        self._headers = {k: v for k, v in headers.items() if k.lower() in FORWARDED_HEADERS}

    async def get(self, document_id: UUID) -> dict[str, Any] | None:
        try:
            response = await self._client.get(
                f"{self._base}/v1/documents/{document_id}", headers=self._headers
            )
        except httpx.HTTPError as exc:
            raise StatusUnavailable(f"the status service did not answer: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise StatusUnavailable(f"the status service answered {response.status_code}")
        body: dict[str, Any] = response.json()
        return body
