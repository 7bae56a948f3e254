"""The status of a document as a fold over its events.

``evolve(state, event)`` is pure: the read model is whatever folding a
document's events gives, so replaying the topics rebuilds it exactly.
Delivery is at-least-once and the status service reads several topics with
no order between them, so the fold is written to be indifferent to both:

* every counter only grows (``max``), so a late or repeated progress event
  never moves a document backwards, and ``progress`` is computed from the
  counters alone, so it ends the same whatever order they came in;
* ``stage`` only advances; ``completed``/``failed`` are terminal, and a
  failed document shows the stage that failed (with pipelining, embedding
  may have started before extraction failed);
* an event about a document not seen yet creates it, and the upload event
  then fills in what only it knows (the read model folds a document's events
  only once its upload is read, ``ownership.py``, but the fold itself does
  not depend on that);
* every event belongs to an attempt (1, then one more per retry): the first
  event of a later attempt, whichever topic it comes from, starts that attempt
  afresh (counters, error and progress reset), and events of earlier
  attempts change nothing but the facts of the upload;
* ``cancelled`` ends the current attempt, whose stage still shows how far
  the work in flight got; ``deleted`` hides the document for good
  (``deleted_at``), whatever arrives after.

``tests/unit/status/test_projection_properties.py`` checks all of this on
random histories (hypothesis): any interleaving of the topics, with
redeliveries, ends exactly where delivery in order ends.

Exact duplicates (same ``event_id``) are dropped before the fold, by the
repository, in the same transaction as the change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from docflow_shared.events import (
    DocumentCancelled,
    DocumentDeleted,
    DocumentFailed,
    DocumentIndexed,
    DocumentProgressed,
    DocumentRetrying,
    DocumentRetryRequested,
    DocumentStalled,
    DocumentUploaded,
    ErrorInfo,
    Event,
    Stage,
    Status,
    TextExtracted,
)
from docflow_status.domain.ownership import Rejected
from docflow_status.domain.stages import QueueStage

__all__ = ["TERMINAL", "DocumentState", "Fold", "Projected", "QueueStage", "Status", "evolve"]


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})
_STAGE_ORDER = {stage: rank for rank, stage in enumerate(Stage)}

# Share of the progress bar that extraction fills; embedding fills the rest.
# On the local CPU model, embedding takes several times longer than reading
# the pages (GeoTopo-komprimiert.pdf on 2 cores, bench/pipelining.py: ~3 s
# to extract 117 pages, ~23 s to embed their 362 chunks), so it gets most of it.
EXTRACTION_SHARE = 20

NO_TEXT_MESSAGE = (
    "No extractable text was found, not even by OCR of the pages without a text layer "
    "(the document may contain only pictures without writing); nothing was indexed"
)


@dataclass(frozen=True)
class DocumentState:
    """Everything the status API says about one document."""

    id: UUID
    tenant_id: str
    filename: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None
    status: Status = Status.PENDING
    stage: Stage = Stage.UPLOADED
    progress: int = 0
    message: str = "Waiting to be processed"
    pages: int | None = None
    # Extraction progress in its own units: pages, or 1 for unpaginated text.
    extract_done: int = 0
    extract_total: int | None = None
    # The page being read by OCR, while one is (DocumentProgressed.ocr_page).
    ocr_page: int | None = None
    # The first page the extractor asked the OCR stage for (DocumentProgressed.ocr_from).
    ocr_from: int | None = None
    chunks_extracted: int = 0
    chunks_total: int | None = None
    chunks_embedded: int = 0
    error: ErrorInfo | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime | None = None
    attempt: int = 1
    # Set once the document is deleted: it is then not shown anywhere.
    deleted_at: datetime | None = None
    # The latest ``since`` of a DocumentStalled of this attempt: the attempt is
    # stalled while nothing happened after it.
    stalled_since: datetime | None = None
    stalled: bool = False
    # Retries of this attempt after transient errors (DocumentRetrying): how many,
    # what the latest said, and when it was announced; the attempt waits for
    # that retry while nothing happened after it.
    retries: int = 0
    retry_note: str | None = None
    retrying_since: datetime | None = None
    # The stage the document waits for, while no stage works on it (queues.py):
    # extracting before the extractor has started it, ocr while pages it asked the
    # OCR stage for are not all read, embedding once it is cut and before the
    # embedder's first batch of it.
    waiting_for: QueueStage | None = None
    # The upload's metadata (DocumentUploaded.metadata); None: none given.
    metadata: dict[str, Any] | None = None


Fold = Callable[[DocumentState | None, Event], DocumentState]


@dataclass(frozen=True)
class Projected:
    """What applying a batch of events to the read model did."""

    # Events applied (duplicates not counted).
    applied: int
    # Every document the batch was about, changed or not, as now stored:
    # (version, state). A document whose events were all duplicates is here
    # too, so whatever announces its status after a crash announces it again.
    documents: dict[UUID, tuple[int, DocumentState]]
    # Documents this batch made terminal (completed, failed, cancelled): each
    # once, however often the batch is delivered.
    finished: list[DocumentState] = field(default_factory=list)
    # Events not applied, and why (domain/ownership.py): they name a document
    # under a tenant that is not its upload's, or a claim check that is not
    # their tenant's and document's. Forged: not recorded as applied either.
    rejected: list[Rejected] = field(default_factory=list)
    # Events kept aside until their document's upload is read.
    parked: int = 0


def _later_stage(current: Stage, new: Stage) -> Stage:
    return new if _STAGE_ORDER[new] > _STAGE_ORDER[current] else current


def _earliest(current: datetime | None, new: datetime) -> datetime:
    return new if current is None or new < current else current


def _latest(current: datetime | None, new: datetime) -> datetime:
    return new if current is None or new > current else current


def _progress(s: DocumentState) -> int:
    """0-100 from pages read and chunks embedded; 100 only once indexed.

    It only grows as facts arrive, in whatever order they do: embedded
    chunks count once their total is known (extraction has ended). An
    estimate of the total from the pages read so far would rise and fall
    with the order events come in, and a replay would then end elsewhere.
    """
    if s.status is Status.COMPLETED:
        return 100
    extracted = s.extract_done / s.extract_total if s.extract_total else 0.0
    embedded = min(1.0, s.chunks_embedded / s.chunks_total) if s.chunks_total else 0.0
    value = EXTRACTION_SHARE * min(1.0, extracted) + (100 - EXTRACTION_SHARE) * embedded
    return min(99, math.floor(value))


def _message(s: DocumentState) -> str:
    if _waiting_for_retry(s) and s.retry_note:
        return s.retry_note
    if s.stalled and s.stalled_since is not None:
        since = s.stalled_since.isoformat(timespec="seconds")
        if s.stage is Stage.UPLOADED:
            return f"Stalled: waiting since {since} for the extractor to start (is it running?)"
        if s.waiting_for is QueueStage.EMBEDDING:
            return f"Stalled: waiting since {since} for the embedder to start (is it running?)"
        if s.waiting_for is QueueStage.OCR:
            return (
                f"Stalled: waiting since {since} for OCR of {_ocr_pages(s)} "
                "(is the OCR consumer running?)"
            )
        return f"Stalled: no progress while {s.stage.value} since {since}; {_progress_message(s)}"
    return _progress_message(s)


def _waiting_for_retry(s: DocumentState) -> bool:
    return (
        s.status not in TERMINAL
        and s.retrying_since is not None
        and (s.updated_at is None or s.updated_at <= s.retrying_since)
    )


def _retry_note(event: DocumentRetrying) -> str:
    at = event.at.strftime("%H:%M:%S UTC")
    return (
        f"Retrying {event.stage.value} at {at} (retry {event.retry} of {event.retries}) "
        f"after: {event.reason}"
    )


def _progress_message(s: DocumentState) -> str:
    if s.status is Status.FAILED and s.error is not None:
        return s.error.message
    if s.status is Status.CANCELLED:
        return f"Cancelled while {s.stage.value}" if s.stage is not Stage.UPLOADED else "Cancelled"
    if s.status is Status.COMPLETED:
        if not s.chunks_total:
            return NO_TEXT_MESSAGE
        pages = f" from {s.pages} page{'s' if s.pages != 1 else ''}" if s.pages else ""
        chunks = f"{s.chunks_total} chunk{'s' if s.chunks_total != 1 else ''}"
        return f"Indexed {chunks}{pages}"
    if s.stage is Stage.EMBEDDING:
        total = s.chunks_total if s.chunks_total is not None else s.chunks_extracted
        extracting = " (still extracting)" if s.chunks_total is None else ""
        return f"Embedded {s.chunks_embedded} of {total} chunks{extracting}"
    if s.waiting_for is QueueStage.EMBEDDING:
        chunks = f"{s.chunks_total} chunk{'s' if s.chunks_total != 1 else ''}"
        return f"Waiting for embedding: {chunks} extracted"
    if (
        s.waiting_for is QueueStage.OCR
        and s.ocr_page is None
        and s.ocr_from is not None
        and s.extract_done < s.ocr_from
    ):
        return f"Waiting for OCR: {_ocr_pages(s)}"
    if s.stage is Stage.EXTRACTING:
        if s.ocr_page is not None:
            return f"Extracting text: OCR page {s.ocr_page} of {s.extract_total or s.pages or '?'}"
        if s.pages:
            return f"Extracting text: {s.extract_done} of {s.pages} pages read"
        return "Extracting text"
    return s.message


def _ocr_pages(s: DocumentState) -> str:
    last = s.extract_total or s.pages
    if last is None or last == s.ocr_from:
        return f"page {s.ocr_from}"
    return f"pages {s.ocr_from}-{last}"


def waiting_for(s: DocumentState) -> QueueStage | None:
    """The stage ``s`` waits for, while none works on it: the extractor has not
    reported on it yet (pending); it asked the OCR stage for pages and has not
    cut it yet (its ranges wait for, or are being read by, OCR consumers; "OCR
    page n of N" says which once they move); or it has cut it and the embedder
    has not reported a batch of it yet. Anything else is work in progress."""
    if s.status is not Status.PENDING and s.status is not Status.PROCESSING:
        return None
    if s.stage is Stage.UPLOADED:
        return QueueStage.EXTRACTING
    if s.stage is Stage.EXTRACTING and s.chunks_total and not s.chunks_embedded:
        return QueueStage.EMBEDDING
    if (
        s.stage is Stage.EXTRACTING
        and s.ocr_from is not None
        and s.chunks_total is None
        and not s.chunks_extracted
    ):
        return QueueStage.OCR
    return None


def _facts(s: DocumentState, event: Event) -> DocumentState:
    """Fold in what the event says happened; every field only grows or is filled in."""
    at = event.occurred_at
    if isinstance(event, DocumentUploaded):
        return replace(
            s,
            filename=event.filename,
            content_type=event.content_type,
            size_bytes=event.size_bytes,
            created_at=at,
            metadata=event.metadata,
        )
    if isinstance(event, DocumentProgressed) and event.stage is Stage.EXTRACTING:
        return replace(
            s,
            extract_done=max(s.extract_done, event.done),
            extract_total=event.total if event.total is not None else s.extract_total,
            ocr_page=event.ocr_page,
            ocr_from=min(filter(None, (s.ocr_from, event.ocr_from)), default=None),
            started_at=_earliest(s.started_at, at),
        )
    if isinstance(event, DocumentProgressed):
        return replace(
            s,
            chunks_embedded=max(s.chunks_embedded, event.done),
            chunks_total=event.total if event.total is not None else s.chunks_total,
            started_at=_earliest(s.started_at, at),
        )
    if isinstance(event, TextExtracted):
        seen = event.chunks[-1].index + 1 if event.chunks else 0
        s = replace(
            s,
            chunks_extracted=max(s.chunks_extracted, seen),
            started_at=_earliest(s.started_at, at),
        )
        if event.last:
            s = replace(
                s,
                chunks_total=event.chunks_total,
                chunks_extracted=max(s.chunks_extracted, event.chunks_total or 0),
                pages=event.pages if event.pages is not None else s.pages,
            )
        return s
    if isinstance(event, DocumentIndexed):
        return replace(
            s,
            chunks_total=event.chunks_total,
            chunks_extracted=max(s.chunks_extracted, event.chunks_total),
            chunks_embedded=max(s.chunks_embedded, event.chunks_total),
        )
    if isinstance(event, DocumentFailed):
        # Work had started by the time something could fail.
        return replace(s, started_at=_earliest(s.started_at, at))
    if isinstance(event, DocumentStalled):
        return replace(s, stalled_since=_latest(s.stalled_since, event.since))
    if isinstance(event, DocumentRetrying):
        latest = event.retry >= s.retries
        return replace(
            s,
            retries=max(s.retries, event.retry),
            retry_note=_retry_note(event) if latest else s.retry_note,
            retrying_since=_latest(s.retrying_since, event.occurred_at),
            started_at=_earliest(s.started_at, event.occurred_at),
        )
    return s


def _stage_reached(s: DocumentState, event: Event) -> DocumentState:
    """The furthest stage the attempt's work has reported."""
    if isinstance(event, DocumentProgressed):
        return replace(s, stage=_later_stage(s.stage, event.stage))
    if isinstance(event, TextExtracted):
        return replace(s, stage=_later_stage(s.stage, Stage.EXTRACTING))
    if isinstance(event, DocumentRetrying):
        return replace(s, stage=_later_stage(s.stage, event.stage))
    return s


def _transition(s: DocumentState, event: Event) -> DocumentState:
    """Move stage and status forward; a terminal document stays where it ended.

    A cancelled attempt still shows how far its work got: pages and batches
    in flight when the cancel came report after it, in any order.
    """
    if s.status is Status.CANCELLED:
        return _stage_reached(s, event)
    if s.status in TERMINAL:
        return s
    at = event.occurred_at
    if isinstance(event, DocumentIndexed):
        return replace(s, stage=Stage.INDEXED, status=Status.COMPLETED, completed_at=at)
    if isinstance(event, DocumentFailed):
        # The stage that failed, even if later stages had started (pipelining).
        return replace(
            s, stage=event.error.stage, status=Status.FAILED, error=event.error, completed_at=at
        )
    if isinstance(event, DocumentCancelled):
        return replace(s, status=Status.CANCELLED, completed_at=at)
    if isinstance(event, DocumentRetryRequested):
        return s  # the attempt it starts was started by _start_attempt
    s = _stage_reached(s, event)
    if s.stage is not Stage.UPLOADED:
        s = replace(s, status=Status.PROCESSING)
    return s


def _start_attempt(s: DocumentState, attempt: int) -> DocumentState:
    """A fresh attempt: what the document is stays, how far this attempt got resets."""
    return replace(
        s,
        attempt=attempt,
        status=Status.PENDING,
        stage=Stage.UPLOADED,
        progress=0,
        message=f"Retry requested (attempt {attempt})",
        extract_done=0,
        extract_total=None,
        ocr_page=None,
        ocr_from=None,
        chunks_extracted=0,
        chunks_total=None,
        chunks_embedded=0,
        error=None,
        started_at=None,
        completed_at=None,
        stalled_since=None,
        retries=0,
        retry_note=None,
        retrying_since=None,
    )


def evolve(state: DocumentState | None, event: Event) -> DocumentState:
    """The document's state after ``event``."""
    s = state or DocumentState(id=event.document_id, tenant_id=event.tenant_id)
    if isinstance(event, DocumentDeleted):
        s = replace(s, deleted_at=_earliest(s.deleted_at, event.occurred_at))
    elif event.attempt < s.attempt:
        # A late event of an earlier attempt: only the upload's facts still count.
        s = _facts(s, event) if isinstance(event, DocumentUploaded) else s
    else:
        if event.attempt > s.attempt:
            s = _start_attempt(s, event.attempt)
        s = _transition(_facts(s, event), event)
    # A stall announcement is not news about the work: it does not move updated_at.
    worked = None if isinstance(event, DocumentStalled) else event.occurred_at
    return _derived(s, event.occurred_at, worked)


def _derived(s: DocumentState, at: datetime, worked: datetime | None) -> DocumentState:
    """What follows from the facts, whichever event brought the last of them."""
    if s.pages is None and s.content_type == "application/pdf" and s.extract_total:
        # The page count is known as soon as extraction starts.
        s = replace(s, pages=s.extract_total)
    updated_at = _latest(s.updated_at, worked) if worked is not None else s.updated_at
    s = replace(
        s,
        waiting_for=waiting_for(s),
        progress=max(s.progress, _progress(s)),
        # Provisional until the upload event, which may come later, sets it.
        created_at=s.created_at or at,
        updated_at=updated_at,
        stalled=(
            s.status not in TERMINAL
            and s.stalled_since is not None
            and (updated_at is None or updated_at <= s.stalled_since)
        ),
    )
    return replace(s, message=_message(s))
