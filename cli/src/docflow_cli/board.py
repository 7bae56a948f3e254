"""The files of one upload and what the services last said of each (no I/O)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TERMINAL = frozenset({"completed", "failed", "cancelled"})


def explain(status: dict[str, Any], message: str) -> str:
    """A document's ``message``, or for a failure: where, why, and whether to retry."""
    error = status.get("error")
    if status.get("status") != "failed" or not error:
        return message
    where = f" while {error['stage']}" if error.get("stage") else ""
    text = f"Failed{where} ({error['code']}): {error['message']}"
    if error.get("retryable"):
        text += f"; it may work if tried again: docflow retry {status['id']}"
    return text


def queue_note(status: dict[str, Any], now: datetime | None = None) -> str | None:
    """Where an unfinished document is in its stage's queue and when it should be
    done ("3 documents ahead for embedding; done in about 40 s, 12:03:10 UTC"), or None
    when the status service does not know."""
    position, stage = status.get("queue_position"), status.get("queue_stage")
    eta = status.get("estimated_completion_at")
    parts = []
    if position is not None and stage:
        ahead = f"{position} document{'s' if position != 1 else ''} ahead"
        parts.append(f"{ahead} for {stage}" if position else f"next for {stage}")
    if eta:
        at = datetime.fromisoformat(str(eta).replace("Z", "+00:00"))
        left = max(0, round((at - (now or datetime.now(UTC))).total_seconds()))
        parts.append(f"done in about {left} s, {at.astimezone(UTC):%H:%M:%S} UTC")
    return "; ".join(parts) or None


@dataclass
class Row:
    """One file: refused by the gateway, or its document's latest status."""

    path: Path
    id: str | None = None
    # The gateway already had these bytes: ``id`` is the earlier document's.
    duplicate: bool = False
    # Why the gateway did not take the file (its problem detail).
    refused: str | None = None
    status: str = "uploading"
    stage: str | None = None
    progress: int = 0
    message: str = ""
    error: dict[str, Any] | None = None
    pages: int | None = None
    chunks: int | None = None
    # Its place in its stage's queue and when it should be done (queue_note).
    queue: str | None = None
    # The highest version the status stream sent; 0: none yet.
    version: int = 0
    started_at: float = 0.0
    seconds: float | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def done(self) -> bool:
        return self.refused is not None or self.status in TERMINAL or self.status == "deleted"

    @property
    def succeeded(self) -> bool:
        return self.refused is None and self.status == "completed"

    @property
    def outcome(self) -> str:
        return "refused" if self.refused is not None else self.status

    def explanation(self) -> str:
        """What happened, in words: the refusal, the failure and whether a retry helps,
        or the status message."""
        if self.refused is not None:
            return f"The gateway refused the file: {self.refused}"
        if self.status == "deleted":
            return "The document was deleted meanwhile"
        if self.queue and not self.done:
            return f"{self.message} ({self.queue})"
        return explain({"id": self.id, "status": self.status, "error": self.error}, self.message)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "filename": self.name,
            "id": self.id,
            "duplicate": self.duplicate,
            "status": self.outcome,
            "stage": self.stage,
            "progress": self.progress,
            "message": self.explanation(),
            "error": self.error,
            "pages": self.pages,
            "chunks": self.chunks,
            "seconds": self.seconds,
        }


@dataclass
class Board:
    """Every file of an upload, updated from upload answers and status changes."""

    rows: list[Row]
    clock: Callable[[], float] = time.monotonic
    _by_id: dict[str, list[Row]] = field(default_factory=dict, init=False)
    # Changes to documents not (yet) known to be ours: the stream may tell of
    # a document before its upload's answer arrives.
    _unclaimed: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict, init=False)

    @classmethod
    def of(cls, paths: list[Path], clock: Callable[[], float] = time.monotonic) -> Board:
        return cls([Row(path, started_at=clock()) for path in paths], clock)

    def refuse(self, row: Row, reason: str) -> list[Row]:
        row.refused = reason
        self._finish(row)
        return [row]

    def accept(self, row: Row, answer: dict[str, Any]) -> list[Row]:
        """The gateway took the file: ``answer`` is its entry of the upload's answer."""
        row.id = str(answer["id"])
        row.duplicate = answer.get("status") == "duplicate"
        row.status = "pending"
        row.message = "Uploaded; waiting for the status service"
        row.started_at = self.clock()
        self._by_id.setdefault(row.id, []).append(row)
        early = self._unclaimed.pop(row.id, None)
        if early is not None:
            self.update(early[1], early[0])
        return [row]

    def update(self, status: dict[str, Any], version: int | None = None) -> list[Row]:
        """Apply a document's status: from the stream with its ``version`` (only a
        higher one counts), or read once with none (counts until the stream says more)."""
        document_id = str(status["id"])
        rows = self._by_id.get(document_id)
        if rows is None:
            if version is not None and version > self._unclaimed.get(document_id, (0, {}))[0]:
                self._unclaimed[document_id] = (version, status)
            return []
        changed = []
        for row in rows:
            if version is None and row.version:
                continue
            if version is not None and version <= row.version:
                continue
            row.version = version or 0
            row.status = status["status"]
            row.stage = status.get("stage")
            row.progress = int(status.get("progress") or 0)
            row.message = status.get("message") or ""
            row.error = status.get("error")
            row.pages = status.get("pages")
            row.chunks = status.get("chunks_total")
            row.queue = queue_note(status)
            self._finish(row)
            changed.append(row)
        return changed

    def deleted(self, document_id: str) -> list[Row]:
        rows = self._by_id.get(document_id, [])
        for row in rows:
            row.status = "deleted"
            self._finish(row)
        return rows

    def _finish(self, row: Row) -> None:
        if row.done and row.seconds is None:
            row.seconds = round(self.clock() - row.started_at, 1)

    @property
    def all_done(self) -> bool:
        return all(row.done for row in self.rows)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.outcome] = counts.get(row.outcome, 0) + 1
        return counts

    @property
    def exit_code(self) -> int:
        """0 when every document completed; 1 when any failed, was refused, cancelled,
        deleted or is not done yet."""
        return 0 if all(row.succeeded for row in self.rows) else 1
