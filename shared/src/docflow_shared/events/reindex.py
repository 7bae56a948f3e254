"""Re-embedding operation events: one operation's requests, steps and outcome,
on the ``docflow.reindex.*`` topics, keyed by its ``reindex_id``."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from docflow_shared import topics
from docflow_shared.events.envelope import Count, Envelope


class EmbeddingSpec(BaseModel):
    """Which model embeds: the backend, the model's name and, where the model
    allows shorter vectors, their length."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    backend: Literal["local", "openai"]
    model: str = Field(min_length=1, max_length=200)
    dimensions: int | None = Field(default=None, ge=1, le=8192)


class ReindexEvent(Envelope):
    """An event of one re-embedding operation, keyed by its ``reindex_id``.

    ``tenant_id`` is the tenant that asked for it; the operation covers every
    tenant's chunks (or the chosen documents).
    """

    reindex_id: UUID

    @property
    def subject(self) -> UUID:
        return self.reindex_id

    @classmethod
    def caused_by(cls, cause: ReindexEvent, **fields: Any) -> Self:
        """A new event of the same operation, in the same correlation."""
        return cls(
            **{
                "reindex_id": cause.reindex_id,
                "tenant_id": cause.tenant_id,
                "correlation_id": cause.correlation_id,
                **fields,
            }
        )


class ReindexRequested(ReindexEvent):
    """Re-embed the stored chunks with ``embedding`` into that model's collection,
    then make it the one searches and new documents use."""

    TOPIC: ClassVar[str] = topics.REINDEX_REQUESTED
    event_type: Literal["docflow.reindex.requested"] = "docflow.reindex.requested"

    embedding: EmbeddingSpec
    # None: every document; else only these (the switch waits until the new
    # collection holds every chunk of the current one).
    document_ids: list[UUID] | None = None


class ReindexAdvanced(ReindexEvent):
    """The embedder re-embedded the current collection's chunks up to ``cursor``.

    Both a progress report (for the status service) and the embedder's
    bookmark: the embedder continues from ``cursor`` when it reads it, so a
    reindex survives restarts and never holds a consumer for long.
    """

    TOPIC: ClassVar[str] = topics.REINDEX_ADVANCED
    event_type: Literal["docflow.reindex.advanced"] = "docflow.reindex.advanced"

    embedding: EmbeddingSpec
    document_ids: list[UUID] | None = None
    source: str  # the collection read (the current one when the reindex began)
    target: str  # the collection written
    # 1: copy every chunk; 2: a last pass for chunks written during pass 1.
    sweep: int = Field(ge=1, le=2)
    # Whether the pass goes on, and from which point of ``source`` (None: its start).
    more: bool
    cursor: str | None
    done: Count  # chunks of ``source`` read so far in this pass
    embedded: Count  # chunks embedded into ``target`` so far
    total: Count  # chunks in ``source`` when the pass began


class ReindexCompleted(ReindexEvent):
    """The re-embedding is over; if ``switched``, searches and new documents now
    use ``target``. The old collection is kept (delete it when no longer wanted)."""

    TOPIC: ClassVar[str] = topics.REINDEX_COMPLETED
    event_type: Literal["docflow.reindex.completed"] = "docflow.reindex.completed"

    embedding: EmbeddingSpec
    source: str
    target: str
    embedded: Count
    switched: bool
    message: str


class ReindexFailed(ReindexEvent):
    """The re-embedding stopped; searches still use the collection they used."""

    TOPIC: ClassVar[str] = topics.REINDEX_FAILED
    event_type: Literal["docflow.reindex.failed"] = "docflow.reindex.failed"

    reason: str


AnyReindexEvent = Annotated[
    ReindexRequested | ReindexAdvanced | ReindexCompleted | ReindexFailed,
    Field(discriminator="event_type"),
]

_any_reindex_event: TypeAdapter[AnyReindexEvent] = TypeAdapter(AnyReindexEvent)


def parse_reindex_event(data: bytes | str) -> ReindexEvent:
    """Decode any event of a re-embedding operation from its JSON body."""
    event: ReindexEvent = _any_reindex_event.validate_json(data)
    return event
