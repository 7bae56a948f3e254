"""What ``docflow upload --wait`` believes about each file, from answers and changes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docflow_cli.board import Board, queue_note

A, B = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"


def status(document_id: str, state: str, progress: int = 0, **more: Any) -> dict[str, Any]:
    return {
        "id": document_id,
        "status": state,
        "stage": more.pop("stage", "extracting"),
        "progress": progress,
        "message": more.pop("message", f"{state} {progress}"),
        "error": more.pop("error", None),
        "pages": more.pop("pages", None),
        "chunks_total": more.pop("chunks_total", None),
    }


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def board_of(*names: str) -> tuple[Board, Clock]:
    clock = Clock()
    return Board.of([Path(name) for name in names], clock), clock


def test_only_a_higher_version_changes_a_document() -> None:
    board, _ = board_of("a.pdf")
    [row] = board.rows
    board.accept(row, {"id": A, "status": "pending"})
    assert board.update(status(A, "processing", 40), version=5) == [row]
    # The stream may send a version twice, or an older one after a reconnect.
    assert board.update(status(A, "processing", 10), version=4) == []
    assert board.update(status(A, "processing", 10), version=5) == []
    assert (row.status, row.progress, row.version) == ("processing", 40, 5)


def test_a_status_read_once_counts_only_until_the_stream_tells_of_the_document() -> None:
    board, _ = board_of("a.pdf", "b.pdf")
    first, second = board.rows
    board.accept(first, {"id": A, "status": "duplicate"})
    board.accept(second, {"id": B, "status": "pending"})
    assert board.update(status(A, "completed", 100, chunks_total=3)) == [first]
    board.update(status(B, "processing", 50), version=3)
    assert board.update(status(B, "pending", 0)) == []
    assert first.duplicate
    assert (first.status, first.chunks, second.progress) == ("completed", 3, 50)


def test_a_change_before_the_upload_answer_is_applied_when_it_comes() -> None:
    board, _ = board_of("a.pdf")
    [row] = board.rows
    assert board.update(status(A, "processing", 20), version=2) == []
    assert board.update(status(A, "processing", 10), version=1) == []
    board.accept(row, {"id": A, "status": "pending"})
    assert (row.status, row.progress, row.version) == ("processing", 20, 2)


def test_two_files_with_the_same_bytes_follow_one_document() -> None:
    board, _ = board_of("a.pdf", "copy-of-a.pdf")
    first, second = board.rows
    board.accept(first, {"id": A, "status": "pending"})
    board.accept(second, {"id": A, "status": "duplicate"})
    assert board.update(status(A, "completed", 100), version=9) == [first, second]
    assert board.all_done
    assert board.exit_code == 0


def test_the_exit_code_is_1_unless_every_document_completed() -> None:
    board, clock = board_of("a.pdf", "b.pdf", "c.json")
    a, b, c = board.rows
    board.accept(a, {"id": A, "status": "pending"})
    board.accept(b, {"id": B, "status": "pending"})
    board.refuse(c, "the file is not a PDF, Markdown or text")
    board.update(status(A, "completed", 100), version=7)
    assert not board.all_done
    clock.now += 2.5
    board.deleted(B)
    assert board.all_done
    assert board.exit_code == 1
    assert board.counts() == {"completed": 1, "deleted": 1, "refused": 1}
    assert (a.seconds, b.seconds) == (0.0, 2.5)
    assert (
        c.explanation() == "The gateway refused the file: the file is not a PDF, Markdown or text"
    )
    assert b.explanation() == "The document was deleted meanwhile"


def test_a_failure_is_explained_with_its_stage_code_and_what_to_do() -> None:
    board, _ = board_of("secret.pdf", "flaky.pdf")
    secret, flaky = board.rows
    board.accept(secret, {"id": A, "status": "pending"})
    board.accept(flaky, {"id": B, "status": "pending"})
    error = {"code": "encrypted", "message": "needs a password", "stage": "extracting"}
    board.update(status(A, "failed", error={**error, "retryable": False}), version=3)
    board.update(
        status(B, "failed", error={**error, "code": "internal", "retryable": True}), version=3
    )
    assert secret.explanation() == "Failed while extracting (encrypted): needs a password"
    assert flaky.explanation() == (
        f"Failed while extracting (internal): needs a password; "
        f"it may work if tried again: docflow retry {B}"
    )
    assert secret.as_json()["status"] == "failed"
    assert board.exit_code == 1


def test_an_unfinished_document_says_where_it_waits_and_when_it_should_be_done() -> None:
    board, _ = board_of("a.pdf")
    board.accept(board.rows[0], {"id": A, "status": "accepted"})
    waiting = status(A, "processing", 20, message="Waiting for embedding: 3 chunks extracted")
    waiting |= {
        "queue_stage": "embedding",
        "queue_position": 4,
        "estimated_completion_at": "2999-01-01T12:00:05Z",
    }
    board.update(waiting, 1)
    row = board.rows[0]
    assert row.explanation().startswith(
        "Waiting for embedding: 3 chunks extracted (4 documents ahead for embedding; done in about"
    )
    assert row.explanation().endswith(", 12:00:05 UTC)")
    # Once done, no estimate.
    board.update(status(A, "completed", 100, message="Indexed 3 chunks"), 2)
    assert row.explanation() == "Indexed 3 chunks"


def test_the_queue_note_of_the_next_in_line_and_of_an_unknown_estimate() -> None:
    now = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
    note = queue_note(
        {
            "queue_stage": "extracting",
            "queue_position": 0,
            "estimated_completion_at": "2026-12-06T06:00:30+00:00",
        },
        now,
    )
    assert note == "next for extracting; done in about 30 s, 06:00:30 UTC"
    assert queue_note({"queue_stage": None, "queue_position": None}) is None
