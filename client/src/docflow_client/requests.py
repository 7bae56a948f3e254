"""What the clients send: upload parts, query parameters and JSON bodies."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from uuid import UUID

import httpx
from pydantic import BaseModel

# Uploads of big files and searches (a model call) may take a while.
TIMEOUT = httpx.Timeout(120.0, connect=5.0)
# How often an upload is sent in all when the gateway answers 429 (rate
# limited) or 503 (Kafka did not acknowledge; nothing was kept).
UPLOAD_ATTEMPTS = 4

# A path, a (file name, bytes or binary file) pair, or a binary file with a name.
Uploadable = str | os.PathLike[str] | tuple[str, bytes | IO[bytes]] | IO[bytes]


@dataclass(frozen=True)
class Part:
    """One file of an upload: a path opened per attempt, or content in hand."""

    name: str
    path: Path | None = None
    content: bytes | IO[bytes] | None = None
    start: int = 0


def uploads_of(files: Sequence[Uploadable]) -> list[Part]:
    if not files:
        raise ValueError("nothing to upload: pass at least one file")
    parts = []
    for item in files:
        if isinstance(item, str | os.PathLike):
            path = Path(item)
            parts.append(Part(path.name, path=path))
        elif isinstance(item, tuple):
            name, content = item
            parts.append(Part(name, content=content, start=_position(content)))
        else:
            name = Path(str(getattr(item, "name", "") or "")).name
            if not name:
                raise ValueError("a file object without a name: pass (filename, file) instead")
            parts.append(Part(name, content=item, start=_position(item)))
    return parts


def _position(content: bytes | IO[bytes]) -> int:
    if isinstance(content, bytes):
        return 0
    try:
        return content.tell()
    except (OSError, ValueError):
        return -1  # not seekable: sent once, not again


class Upload:
    """The multipart ``file`` fields of one attempt: ``with Upload(parts) as files``
    opens the paths (closed after) and rewinds file objects to where they were."""

    def __init__(self, parts: list[Part], metadata: dict[str, Any] | None = None) -> None:
        self.parts = parts
        self.metadata = metadata
        self._opened = contextlib.ExitStack()

    def __enter__(self) -> list[tuple[str, Any]]:
        fields: list[tuple[str, Any]] = []
        if self.metadata is not None:
            # A form field (no file name) holding the JSON object.
            encoded = json.dumps(self.metadata, separators=(",", ":")).encode()
            fields.append(("metadata", (None, encoded, "application/json")))
        for part in self.parts:
            if part.path is not None:
                content: bytes | IO[bytes] = self._opened.enter_context(part.path.open("rb"))
            else:
                assert part.content is not None
                content = part.content
                if not isinstance(content, bytes) and part.start >= 0:
                    content.seek(part.start)
            fields.append(("file", (part.name, content)))
        return fields

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._opened.close()


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def meta_filters(meta: dict[str, Any] | Iterable[str] | None) -> list[str]:
    """``key=value`` filters from a mapping (a list value: any of its items) or as given;
    numbers and booleans in their JSON spelling."""
    if meta is None:
        return []
    if not isinstance(meta, dict):
        return list(meta)
    found = []
    for key, value in meta.items():
        for item in value if isinstance(value, list | tuple | set) else [value]:
            found.append(f"{key}={item if isinstance(item, str) else json.dumps(item)}")
    return found


# Filters that take several values: sent once per value.
_REPEATED = {"meta", "filename", "document_id"}


def listing_params(filters: dict[str, Any]) -> list[tuple[str, Any]]:
    known = {"status", "stage", "created_from", "created_before", "limit", "cursor"} | _REPEATED
    unknown = set(filters) - known
    if unknown:
        raise TypeError(f"unknown filters: {', '.join(sorted(unknown))}")
    return filter_params(filters)


def filter_params(filters: dict[str, Any]) -> list[tuple[str, Any]]:
    """Query parameters of the listing's and the search's filters (``meta`` a mapping or
    ``key=value`` strings; ``filename`` and ``document_id`` one value or several)."""
    params: list[tuple[str, Any]] = []
    for name, value in filters.items():
        if value is None:
            continue
        if name == "meta":
            params += [("meta", m) for m in meta_filters(value)]
        elif name in _REPEATED and isinstance(value, list | tuple | set):
            params += [(name, _plain(v)) for v in value]
        else:
            params.append((name, _plain(value)))
    return params


def reindex_body(
    embedding: BaseModel | dict[str, Any], document_ids: Iterable[UUID | str] | None
) -> dict[str, Any]:
    spec = (
        embedding.model_dump(exclude_none=True) if isinstance(embedding, BaseModel) else embedding
    )
    body: dict[str, Any] = {"embedding": spec}
    if document_ids is not None:
        body["document_ids"] = [str(d) for d in document_ids]
    return body


def redrive_body(request: dict[str, Any]) -> dict[str, Any]:
    known = {"document_ids", "service", "since", "error_contains", "dry_run"}
    unknown = set(request) - known
    if unknown:
        raise TypeError(f"unknown redrive filters: {', '.join(sorted(unknown))}")
    body = {name: _plain(value) for name, value in request.items() if value is not None}
    if "document_ids" in body:
        body["document_ids"] = [str(d) for d in body["document_ids"]]
    return body
