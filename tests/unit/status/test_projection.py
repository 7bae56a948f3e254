from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from functools import reduce
from uuid import UUID, uuid4

import pytest

from docflow_shared.events import (
    DocumentCancelled,
    DocumentDeleted,
    DocumentFailed,
    DocumentProgressed,
    DocumentRetrying,
    DocumentRetryRequested,
    DocumentStalled,
    DocumentUploaded,
    Event,
    Stage,
)
from docflow_status.domain.projection import NO_TEXT_MESSAGE, DocumentState, Status, evolve
from support.histories import T0, envelope, failed_while_extracting, retry_of, successful


def fold(events: list[Event]) -> DocumentState:
    state = reduce(evolve, events, None)
    assert state is not None
    return state


def test_a_successful_history_ends_completed_with_every_field_set() -> None:
    s = fold(successful(pages=10, per_batch=4, batches=3))
    assert (s.status, s.stage, s.progress) == (Status.COMPLETED, Stage.INDEXED, 100)
    assert (s.pages, s.chunks_total, s.chunks_embedded) == (10, 12, 12)
    assert s.filename == "report.pdf"
    assert s.created_at == T0
    assert s.created_at < s.started_at < s.completed_at == s.updated_at
    assert s.message == "Indexed 12 chunks from 10 pages"
    assert s.error is None


def test_a_page_read_by_ocr_shows_as_ocr_page_n_of_n_until_it_is_read() -> None:
    events = successful(pages=10)
    d = events[1].document_id
    ocr = DocumentProgressed(
        **envelope(d, 1.5), stage=Stage.EXTRACTING, done=0, total=10, ocr_page=1
    )
    reading = fold([*events[:2], ocr])
    assert reading.message == "Extracting text: OCR page 1 of 10"
    read = DocumentProgressed(**envelope(d, 1.6), stage=Stage.EXTRACTING, done=1, total=10)
    assert fold([*events[:2], ocr, read]).message == "Extracting text: 1 of 10 pages read"
    assert fold([*events[:2], ocr, *events[2:]]).message == "Indexed 12 chunks from 10 pages"


def test_progress_rises_in_several_steps_and_never_goes_back() -> None:
    state, seen = None, []
    for event in successful(pages=20, per_batch=5, batches=6):
        state = evolve(state, event)
        seen.append(state.progress)
    assert seen == sorted(seen)
    assert len(set(seen)) >= 6
    assert seen[-1] == 100
    assert all(p < 100 for p in seen[:-1])


def test_status_and_stage_follow_the_work() -> None:
    events = successful()
    states = [fold(events[: i + 1]) for i in range(len(events))]
    assert (states[0].status, states[0].stage) == (Status.PENDING, Stage.UPLOADED)
    assert (states[1].status, states[1].stage) == (Status.PROCESSING, Stage.EXTRACTING)
    assert states[1].message == "Extracting text: 0 of 10 pages read"
    embedding = next(s for s in states if s.stage is Stage.EMBEDDING)
    assert embedding.status is Status.PROCESSING
    assert embedding.message.startswith("Embedded ")


@pytest.mark.parametrize("seed", range(20))
def test_any_delivery_order_with_duplicates_ends_in_the_same_final_state(seed: int) -> None:
    events = successful()
    rng = random.Random(seed)
    shuffled = events + rng.sample(events, k=5)
    rng.shuffle(shuffled)
    in_order, out_of_order = fold(events), fold(shuffled)
    for field in (
        "status",
        "stage",
        "progress",
        "message",
        "pages",
        "chunks_total",
        "chunks_embedded",
        "filename",
        "created_at",
        "started_at",
        "completed_at",
        "updated_at",
    ):
        assert getattr(out_of_order, field) == getattr(in_order, field), field


def test_a_failure_is_terminal_and_keeps_its_reason() -> None:
    events = failed_while_extracting()
    late_work = successful(events[0].document_id)[1:]
    s = fold(events + late_work)
    assert s.status is Status.FAILED
    assert s.stage is Stage.EXTRACTING
    assert s.error is not None
    assert s.error.code == "encrypted"
    assert s.message == "needs a password"
    assert s.completed_at == events[1].occurred_at


def test_a_failed_document_shows_the_stage_that_failed() -> None:
    s = fold(failed_while_extracting())
    assert (s.status, s.stage) == (Status.FAILED, Stage.EXTRACTING)
    assert s.started_at is not None


def test_events_before_the_upload_event_create_the_document() -> None:
    events = successful()
    s = evolve(None, events[3])
    assert s.filename is None
    assert s.status is Status.PROCESSING
    s = evolve(s, events[0])
    assert s.filename == "report.pdf"
    assert s.created_at == events[0].occurred_at


def test_a_document_without_text_completes_and_says_so() -> None:
    events = successful(per_batch=0, batches=1)
    s = fold(events)
    assert (s.status, s.chunks_total, s.progress) == (Status.COMPLETED, 0, 100)
    assert s.message == NO_TEXT_MESSAGE


def test_failure_after_completion_changes_nothing() -> None:
    events = successful()
    late = failed_while_extracting(events[0].document_id)[1]
    assert isinstance(late, DocumentFailed)
    assert fold([*events, late]).status is Status.COMPLETED


# -- operations: retry (attempts), cancel, delete ---------------------------


def in_attempt(events: list[Event], attempt: int, after_s: float) -> list[Event]:
    """The same history as another attempt, later in time, with new event ids."""
    return [
        e.model_copy(
            update={
                "attempt": attempt,
                "event_id": uuid4(),
                "occurred_at": e.occurred_at + timedelta(seconds=after_s),
            }
        )
        for e in events
        if not isinstance(e, DocumentUploaded)
    ]


def retried_history() -> list[Event]:
    """Attempt 1 fails while extracting; attempt 2 (a retry) completes."""
    d = uuid4()
    first = failed_while_extracting(d)
    return [*first, retry_of(d, 100), *in_attempt(successful(d), 2, 101)]


def test_a_retry_starts_a_new_attempt_that_can_complete() -> None:
    events = retried_history()
    retry_at = next(i for i, e in enumerate(events) if isinstance(e, DocumentRetryRequested))
    states, state = [], None
    for event in events:
        state = evolve(state, event)
        states.append(state)

    failed, restarted, final = states[retry_at - 1], states[retry_at], states[-1]
    assert (failed.status, failed.attempt) == (Status.FAILED, 1)
    assert (restarted.status, restarted.attempt, restarted.progress) == (Status.PENDING, 2, 0)
    assert restarted.error is None
    assert (final.status, final.attempt, final.progress) == (Status.COMPLETED, 2, 100)
    assert final.filename == "report.pdf"
    # Within the new attempt, progress never goes backwards.
    attempt2 = [s.progress for s in states[retry_at:]]
    assert attempt2 == sorted(attempt2)


def test_a_late_event_of_an_earlier_attempt_changes_nothing() -> None:
    events = retried_history()
    late_failure = next(e for e in events if isinstance(e, DocumentFailed))
    final = fold(events)
    assert fold([*events, late_failure.model_copy(update={"event_id": uuid4()})]) == final


@pytest.mark.parametrize("seed", range(20))
def test_across_attempts_any_delivery_order_ends_in_the_same_final_state(seed: int) -> None:
    events = retried_history()
    rng = random.Random(seed)
    shuffled = events + rng.sample(events, k=5)
    rng.shuffle(shuffled)
    in_order, out_of_order = fold(events), fold(shuffled)
    for field in ("status", "stage", "progress", "attempt", "error", "chunks_total", "filename"):
        assert getattr(out_of_order, field) == getattr(in_order, field), field


def test_cancelling_ends_the_attempt_and_a_retry_can_start_another() -> None:
    d = uuid4()
    history = successful(d)
    started = history[:4]
    cancelled = DocumentCancelled(**envelope(d, 3))
    rest = history[4:]

    state = fold([*started, cancelled, *rest])
    assert state.status is Status.CANCELLED
    assert state.message.startswith("Cancelled")
    assert state.progress < 100

    again = fold([*started, cancelled, *rest, retry_of(d, 50), *in_attempt(history, 2, 51)])
    assert (again.status, again.attempt) == (Status.COMPLETED, 2)


def test_a_deleted_document_stays_deleted_whatever_arrives_after() -> None:
    d = uuid4()
    history = successful(d)
    deleted = DocumentDeleted(**envelope(d, 5))
    state = fold([*history[:3], deleted, *history[3:]])
    assert state.deleted_at == deleted.occurred_at


def stall(events: list[Event], attempt: int = 1) -> DocumentStalled:
    """What the watchdog announces after ``events``: nothing since the last of them."""
    last = max(e.occurred_at for e in events)
    return DocumentStalled(
        **envelope(events[0].document_id, 1000),
        attempt=attempt,
        since=last,
        stage=Stage.EXTRACTING,
    )


def test_a_stall_shows_until_something_newer_arrives() -> None:
    events = successful()
    before = events[:4]
    s = fold([*before, stall(before)])
    assert s.stalled
    assert s.status is Status.PROCESSING
    assert s.message.startswith("Stalled: no progress while extracting since")
    # The announcement is not progress: updated_at still says when work last happened.
    assert s.updated_at == before[-1].occurred_at
    resumed = fold([*before, stall(before), events[4]])
    assert not resumed.stalled
    assert not resumed.message.startswith("Stalled")


def test_an_event_older_than_the_stall_does_not_clear_it() -> None:
    events = successful()
    # The fourth event comes late from its topic, after the stall was announced.
    s = fold([*events[:3], events[4], stall(events[:5]), events[3]])
    assert s.stalled


def test_a_stall_announced_late_for_a_document_that_moved_on_changes_nothing() -> None:
    events = successful()
    s = fold([*events[:6], stall(events[:4])])
    assert not s.stalled
    # Only the announcement itself is kept.
    assert replace(s, stalled_since=None) == fold(events[:6])


def test_a_finished_document_is_never_stalled() -> None:
    events = successful()
    assert not fold([*events, stall(events)]).stalled
    failed = failed_while_extracting()
    assert not fold([*failed, stall(failed)]).stalled


def test_a_retry_clears_the_stall_of_the_attempt_before() -> None:
    events = successful()
    d = events[0].document_id
    retry = retry_of(d, 2000)
    s = fold([*events[:4], stall(events[:4]), retry])
    assert (s.attempt, s.stalled, s.stalled_since) == (2, False, None)
    # A stall of attempt 1 arriving after the retry is old news.
    assert not fold([*events[:4], retry, stall(events[:4])]).stalled


def retrying(document_id: UUID, second: float, retry: int, reason: str) -> DocumentRetrying:
    return DocumentRetrying(
        **envelope(document_id, second),
        stage=Stage.EMBEDDING,
        retry=retry,
        retries=3,
        at=T0 + timedelta(seconds=second + 30),
        reason=reason,
    )


def test_a_retry_after_a_transient_error_is_counted_and_said_until_work_resumes() -> None:
    history = successful(pages=10, per_batch=4, batches=3)
    d = history[0].document_id
    # Mid-way (after the first chunk batch): the embedder parks a batch, twice.
    middle = len(history) // 2
    before = history[:middle]
    last_second = (before[-1].occurred_at - T0).total_seconds()
    first = retrying(d, last_second + 1, 1, "Qdrant: connection refused")
    second = retrying(d, last_second + 31, 2, "Qdrant: connection refused")
    waiting = fold([*before, first, second])
    assert (waiting.status, waiting.stage, waiting.retries) == (
        Status.PROCESSING,
        Stage.EMBEDDING,
        2,
    )
    at = (second.at).strftime("%H:%M:%S UTC")
    assert waiting.message == (
        f"Retrying embedding at {at} (retry 2 of 3) after: Qdrant: connection refused"
    )
    # Any order gives the same; the retries stay counted after the work resumes.
    assert fold([*before, second, first]) == waiting
    resumed = fold([*before, first, second, *[replace_second(e, 100) for e in history[middle:]]])
    assert resumed.status is Status.COMPLETED
    assert resumed.retries == 2
    assert resumed.message == "Indexed 12 chunks from 10 pages"


def test_a_new_attempt_starts_without_retries() -> None:
    history = failed_while_extracting()
    d = history[0].document_id
    s = fold([*history[:-1], retrying(d, 5, 1, "blob store unavailable"), history[-1]])
    assert s.retries == 1
    again = fold([*history, retrying(d, 5, 1, "x"), retry_of(d, 10)])
    assert (again.attempt, again.retries, again.retry_note) == (2, 0, None)


def replace_second(event: Event, offset: float) -> Event:
    return event.model_copy(update={"occurred_at": event.occurred_at + timedelta(seconds=offset)})


def test_one_chunk_from_one_page_is_said_in_the_singular() -> None:
    s = reduce(evolve, successful(pages=1, per_batch=1, batches=1), None)
    assert s is not None
    assert s.message == "Indexed 1 chunk from 1 page"
