"""What every event is made of: the envelope (``Envelope``; ``Event`` for the
events about one document) and the words events share: stages, statuses,
error codes, content types."""

from __future__ import annotations

from abc import abstractmethod
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID, uuid4

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from docflow_shared.auth import TENANT_PATTERN


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


# What the gateway accepts, decided from each file's bytes (README, "Uploads
# in detail"); the longest (73 characters) fits the read models' columns (128).
ContentType = Literal[
    "application/pdf",
    "text/markdown",
    "text/plain",
    "text/html",
    "application/epub+zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
]

# Bounds on what an event may carry, so that any event that parses also fits
# the status read model (its INTEGER and VARCHAR columns,
# docflow_status/adapters/tables.py): an event that does not fit is unreadable
# (dead-lettered) instead of failing the projector's transaction forever.
MAX_INT32 = 2**31 - 1
Count = Annotated[int, Field(ge=0, le=MAX_INT32)]
"""A count or an index (pages, chunks, bytes, attempts): fits an SQL INTEGER."""

TenantId = Annotated[str, Field(pattern=TENANT_PATTERN)]
"""A tenant as the API keys name it (auth.py; at most 64 characters, the column's width)."""

# Correlation ids come from callers (X-Correlation-ID) and travel in every event
# and header: bounded, so one request cannot make every event of a document huge.
MAX_CORRELATION_ID_CHARS = 200

# Free text (error messages, retry reasons) is cut rather than refused: the status
# read model keeps at most 2000 characters of a message, with room for its context.
MAX_TEXT_CHARS = 1000


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        return value[: MAX_TEXT_CHARS - 1] + "…"
    return value


Text = Annotated[str, BeforeValidator(_cut)]
"""Free text read by people, cut to ``MAX_TEXT_CHARS``."""


def _in_utc_range(value: datetime) -> datetime:
    # A time whose offset takes it past year 1 or 9999 in UTC cannot be stored
    # or compared (OverflowError in the read model): refused when read.
    try:
        value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the time is out of range in UTC") from exc
    return value


Timestamp = Annotated[AwareDatetime, AfterValidator(_in_utc_range)]
"""A time with its offset, representable in UTC."""


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
    occurred_at: Timestamp = Field(default_factory=_now)
    tenant_id: TenantId
    # Ties together everything one request caused, across services and logs.
    correlation_id: str = Field(max_length=MAX_CORRELATION_ID_CHARS)

    @property
    @abstractmethod
    def subject(self) -> UUID:
        """What the event is about: its Kafka key, so events about one thing stay in order."""

    @property
    def kafka_key(self) -> bytes:
        """The record's key: the subject, unless the topic is compacted by something else."""
        return str(self.subject).encode()

    def kafka_partition(self, partitions: int) -> int | None:
        """The partition of the topic's ``partitions`` to write to; None: the key's
        hash decides (Kafka's default, and every event's but a few)."""
        return None


class Event(Envelope):
    """A document event: the envelope plus the document and its attempt."""

    document_id: UUID
    # Which processing attempt of the document this event belongs to: 1 for the
    # upload, one more for each retry. Optional (added in schema 1): absent
    # means 1.
    attempt: int = Field(default=1, ge=1, le=MAX_INT32)

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
