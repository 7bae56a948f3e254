"""A document's timeline: every stage of every attempt, with start, end and outcome.

Built from what the read model records of each applied event, sorted by
when it happened, so it is the same whatever order the events arrived in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from docflow_shared.events import (
    DocumentCancelled,
    DocumentFailed,
    DocumentIndexed,
    DocumentProgressed,
    DocumentRetrying,
    ErrorInfo,
    Event,
    Stage,
    TextExtracted,
)


@dataclass(frozen=True)
class TimelineEntry:
    """What the timeline keeps of one event."""

    event_type: str
    attempt: int
    occurred_at: datetime
    # The stage the event is about, when it is about one.
    stage: Stage | None = None
    error: ErrorInfo | None = None
    # The event finishes its stage (the last chunk batch; the document indexed).
    ends_stage: bool = False


def timeline_entry(event: Event) -> TimelineEntry:
    stage: Stage | None = None
    error: ErrorInfo | None = None
    ends = False
    if isinstance(event, DocumentProgressed):
        stage = event.stage
    elif isinstance(event, TextExtracted):
        stage, ends = Stage.EXTRACTING, event.last
    elif isinstance(event, DocumentIndexed):
        stage, ends = Stage.EMBEDDING, True
    elif isinstance(event, DocumentFailed):
        stage, error = event.error.stage, event.error
    elif isinstance(event, DocumentRetrying):
        stage = event.stage
    return TimelineEntry(event.event_type, event.attempt, event.occurred_at, stage, error, ends)


@dataclass(frozen=True)
class StageSpan:
    """One stage of one attempt: from its first event to its last."""

    stage: Stage
    attempt: int
    started_at: datetime
    ended_at: datetime
    # "completed", "failed", "cancelled", "stopped" (the other stage failed) or "running"
    outcome: str
    error: ErrorInfo | None = None

    @property
    def duration_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


_WORK = (Stage.EXTRACTING, Stage.EMBEDDING)
_CANCELLED = DocumentCancelled.model_fields["event_type"].default


def stage_spans(entries: list[TimelineEntry]) -> list[StageSpan]:
    """Every stage each attempt reached, in order, with how it ended."""
    spans: list[StageSpan] = []
    for attempt in sorted({e.attempt for e in entries}):
        of_attempt = [e for e in entries if e.attempt == attempt]
        failure = next((e for e in of_attempt if e.error is not None), None)
        cancelled = any(e.event_type == _CANCELLED for e in of_attempt)
        for stage in _WORK:
            times = [e.occurred_at for e in of_attempt if e.stage is stage]
            if not times:
                continue
            outcome, error = "running", None
            if failure is not None and failure.stage is stage:
                outcome, error = "failed", failure.error
            elif any(e.stage is stage and e.ends_stage for e in of_attempt):
                outcome = "completed"
            elif cancelled:
                outcome = "cancelled"
            elif failure is not None:
                outcome = "stopped"  # the other stage failed
            spans.append(StageSpan(stage, attempt, min(times), max(times), outcome, error))
    return spans
