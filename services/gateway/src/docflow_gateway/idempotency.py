"""Idempotency keys on uploads: the same key and request get the first answer again.

A client that did not hear the answer to an upload sends it again with the
same ``Idempotency-Key``. The key is claimed before anything is announced, so
two requests with one key never both publish: the second waits for the first
to be answered (``KeyInUse``), then gets that answer replayed (``Replayed``).
A key used with other files or options is refused (``KeyReused``). When the
request fails, the key is released so that it can be sent again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from docflow_gateway.adapters.registry import KeyState, SqlRegistry
from docflow_gateway.domain.files import ReceivedFile
from docflow_shared.blobstore import BlobStore

# The status of every first answer to an upload (202 Accepted).
ACCEPTED = 202

Answer = TypeVar("Answer", bound=BaseModel)


class KeyReused(Exception):
    """The key was used before with different files or options."""


class KeyInUse(Exception):
    """A request with the key is still being handled."""


@dataclass(frozen=True)
class Replayed:
    """The answer given to the first request with the key."""

    status_code: int
    body: dict[str, Any]


def fingerprint(
    files: Sequence[ReceivedFile], dedup: bool, metadata: dict[str, Any] | None = None
) -> str:
    """What makes two requests "the same" for an idempotency key: files, options and
    metadata (none: the fingerprint keys had before there was metadata)."""
    described = [[f.filename, f.inspector.sha256, f.inspector.size] for f in files]
    request: list[Any] = [described, dedup]
    if metadata:
        request.append(metadata)
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


async def answer_once(
    key: str | None,
    files: Sequence[ReceivedFile],
    *,
    tenant_id: str,
    dedup: bool,
    metadata: dict[str, Any] | None = None,
    records: SqlRegistry,
    blobs: BlobStore,
    handle: Callable[[], Awaitable[Answer]],
) -> Answer | Replayed:
    """``handle`` the request (its ``files`` already stored) once per ``key``.

    Without a key, ``handle`` runs. With one, the first request runs and its
    answer is kept; an identical request later gets it as ``Replayed``. A
    request not handled keeps none of its files. Raises ``KeyReused`` or
    ``KeyInUse``; when ``handle`` raises, the key is released and it raises.
    """
    if key is None:
        return await handle()
    claim = await records.claim_key(tenant_id, key, fingerprint(files, dedup, metadata))
    if claim.state is not KeyState.CLAIMED:
        for file in files:
            blobs.delete(file.blob_key)
    if claim.state is KeyState.REPLAY:
        return Replayed(claim.status_code or ACCEPTED, claim.response or {})
    if claim.state is KeyState.MISMATCH:
        raise KeyReused(
            f"Idempotency-Key {key!r} was used with different files or "
            "options; use a new key for a new request"
        )
    if claim.state is KeyState.IN_PROGRESS:
        raise KeyInUse(
            f"a request with Idempotency-Key {key!r} is still being handled; "
            "send this one again once it has been answered"
        )
    try:
        answer = await handle()
    except BaseException:
        await records.release_key(tenant_id, key)
        raise
    await records.complete_key(tenant_id, key, ACCEPTED, answer.model_dump(mode="json"))
    return answer
