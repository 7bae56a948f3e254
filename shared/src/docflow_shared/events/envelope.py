"""What every event is made of: the envelope (``Envelope``; ``Event`` for the
events about one document) and the words events share: stages, statuses,
error codes, content types."""

from __future__ import annotations

from abc import abstractmethod
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, Self
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Stage(StrEnum):
    """Where a document is in the pipeline, in the order it gets there."""

    UPLOADED = "uploaded"
    EXTRACTING = "extracting"
    EMBEDDING = "embedding"
    INDEXED = "indexed"


class Status(StrEnum):
    """What became of a document (docs/architecture.md, "Status contract")."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ErrorCode(StrEnum):
    """Stable failure codes clients can branch on (docs/architecture.md, "Status contract")."""

    ENCRYPTED = "encrypted"
    CORRUPT = "corrupt"
    UNSUPPORTED = "unsupported"
    LIMIT_EXCEEDED = "limit_exceeded"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


ContentType = Literal["application/pdf", "text/markdown", "text/plain"]


def _now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """Fields shared by every event: document events and operation events alike."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    TOPIC: ClassVar[str]

    event_type: str
    # The only version these models read: an event of another version is
    # unreadable here (dead-lettered), and a breaking change is a new topic.
    schema_version: Literal[1] = 1
    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: AwareDatetime = Field(default_factory=_now)
    tenant_id: str
    # Ties together everything one request caused, across services and logs.
    correlation_id: str

    @property
    @abstractmethod
    def subject(self) -> UUID:
        """What the event is about: its Kafka key, so events about one thing stay in order."""


class Event(Envelope):
    """A document event: the envelope plus the document and its attempt."""

    document_id: UUID
    # Which processing attempt of the document this event belongs to: 1 for the
    # upload, one more for each retry. Optional (added in schema 1): absent
    # means 1.
    attempt: int = Field(default=1, ge=1)

    @property
    def subject(self) -> UUID:
        return self.document_id

    @classmethod
    def caused_by(cls, cause: Event, **fields: Any) -> Self:
        """A new event about the same document, in the same correlation and attempt."""
        return cls(
            **{
                "document_id": cause.document_id,
                "tenant_id": cause.tenant_id,
                "correlation_id": cause.correlation_id,
                "attempt": cause.attempt,
                **fields,
            }
        )
