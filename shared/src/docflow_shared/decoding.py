"""Reading Kafka messages without trusting them: any bytes, any headers.

Whoever can reach the brokers can publish anything (docs/architecture.md,
"Trust boundaries"), and a message whose reading raises outside the failure
middleware is redelivered forever. So every way a consumer reads a message
goes through here, and each either succeeds or raises ``ValueError`` (a
pydantic ``ValidationError`` for a body that is JSON but not the event, or
``Unreadable``), which the failure path (failures.py, batches.py) turns into
a dead letter:

* a body larger than ``MAX_BODY_BYTES`` is not parsed at all;
* JSON is parsed by pydantic's parser (jiter), which refuses nesting deeper
  than its recursion limit (200) with a ``ValueError``; the standard
  library's ``json.loads``, FastStream's default, raises ``RecursionError``
  on 100 KB of ``[`` instead;
* header values are decoded as UTF-8 with replacement (FastStream's own
  parser raises ``UnicodeDecodeError`` on anything else, before any
  middleware runs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pydantic_core
from pydantic import ValidationError

# Kafka's default message size limit (message.max.bytes): nothing larger is
# one of docflow's events (chunk batches are capped at 256 KiB).
MAX_BODY_BYTES = 1024 * 1024

E = TypeVar("E")


class Unreadable(ValueError):
    """A message body that is not a JSON document docflow could read."""


def check_size(body: bytes) -> bytes:
    """``body``, if it is small enough to parse (``Unreadable`` otherwise)."""
    if len(body) > MAX_BODY_BYTES:
        raise Unreadable(f"{len(body)} bytes, more than the {MAX_BODY_BYTES} an event may have")
    return body


def read(parse: Callable[[bytes], E], body: bytes) -> E:
    """``parse(body)`` for a pydantic parser (``Model.model_validate_json``, a
    ``TypeAdapter``'s ``validate_json``); whatever the bytes, it returns the event
    or raises ``ValueError`` (``ValidationError`` or ``Unreadable``)."""
    check_size(body)
    try:
        return parse(body)
    except ValidationError:
        raise
    except (ValueError, RecursionError, MemoryError) as exc:
        raise Unreadable(f"{type(exc).__name__}: {exc}"[:300]) from exc


def loads(body: bytes) -> Any:
    """JSON to Python, bounded in size and nesting (``Unreadable`` otherwise)."""
    check_size(body)
    try:
        return pydantic_core.from_json(body)
    except (ValueError, RecursionError) as exc:
        raise Unreadable(f"not JSON: {exc}"[:300]) from exc


async def decode(message: Any, default: Callable[[Any], Awaitable[Any]]) -> Any:
    """The brokers' decoder (``make_broker``): FastStream's, with ``loads`` for JSON.

    As FastStream's: ``text/plain`` is text, a body with a JSON content type
    must be JSON, and one without a content type is JSON if it parses and
    bytes if not."""
    body = message.body
    if isinstance(body, list):
        # A batch (read message by message by batches.py): what is not JSON stays
        # bytes, so that one body cannot make the whole batch unreadable.
        return [_json_or_bytes(one) for one in body]
    content_type = (message.content_type or "").lower()
    if content_type.startswith("text/plain"):
        return check_size(body).decode()
    if content_type.startswith("application/json"):
        return loads(body)
    return _json_or_bytes(body)


def _json_or_bytes(body: bytes) -> Any:
    try:
        return loads(body)
    except Unreadable:
        return body


def _safe_headers(record: Any) -> Any:
    headers = record.headers or ()
    if all(isinstance(value, bytes) and value.isascii() for _, value in headers):
        return record
    clean = tuple(
        (str(key), (value or b"").decode(errors="replace").encode()) for key, value in headers
    )
    return dataclasses.replace(record, headers=clean)


async def parse(record: Any, default: Callable[[Any], Awaitable[Any]]) -> Any:
    """The brokers' parser: FastStream's, given headers it can decode (a record, or
    a batch's tuple of records)."""
    if isinstance(record, tuple):
        return await default(tuple(_safe_headers(one) for one in record))
    if dataclasses.is_dataclass(record):
        record = _safe_headers(record)
    return await default(record)
