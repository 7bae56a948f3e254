"""The fault suite's verdict (tests/support/faults.py) on made-up reports: a run
passes only if every document reached the outcome its file must reach, and
the other bounds held (issue 20, finding 8: a run used to pass with documents
failed or cancelled, and redeliveries were counted but never bounded)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from support.faults import Planned, Report, Sent, _judge_outcomes, problems


def judged(*pairs: tuple[str, dict[str, Any] | None]) -> Report:
    """A report of documents each with its expected outcome and its final status."""
    report = Report("made up", documents_accepted=len(pairs), read_model_equals_replay=True)
    sent, statuses = [], {}
    for expected, status in pairs:
        one = Sent(Planned(None, "file.pdf", b"", expected), f"/v1/documents/{uuid4()}")
        sent.append(one)
        statuses[one.id] = status
    _judge_outcomes(report, sent, statuses)
    return report


COMPLETED = {"status": "completed", "message": "Indexed 3 chunks", "chunks_total": 3}
ENCRYPTED = {"status": "failed", "message": "encrypted", "error": {"code": "encrypted"}}


def test_every_document_at_its_expected_outcome_holds() -> None:
    report = judged(("completed", COMPLETED), ("failed:encrypted", ENCRYPTED))
    assert problems(report) == []
    assert report.outcomes == {"completed": 1, "failed:encrypted": 1}


@pytest.mark.parametrize(
    ("expected", "status", "shown"),
    [
        ("completed", ENCRYPTED, "got failed:encrypted"),
        ("completed", {"status": "cancelled", "message": "Cancelled"}, "got cancelled"),
        ("completed", {"status": "processing", "message": "Extracting"}, "got processing"),
        ("completed", None, "got missing"),
        ("failed:encrypted", {**ENCRYPTED, "error": {"code": "corrupt"}}, "got failed:corrupt"),
        ("failed:encrypted", COMPLETED, "got completed"),
    ],
)
def test_a_document_off_its_expected_outcome_fails_the_run(
    expected: str, status: dict[str, Any] | None, shown: str
) -> None:
    report = judged(("completed", COMPLETED), (expected, status))
    [problem] = problems(report)
    assert "1 of 2 documents did not reach their expected outcome" in problem
    assert shown in problem


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"redeliveries_seen": 31, "redeliveries_bound": 30}, "more than the scenario's bound"),
        ({"read_model_equals_replay": False}, "differs from a replay"),
        ({"consumers_lag": {"docflow-status": 3}}, "still behind"),
        ({"poison": [{}], "poison_not_dead_lettered": ["100 KB of '['"]}, "not on the dead-letter"),
        ({"cross_tenant_effects": ["acme's ledger deleted"]}, "cross-tenant effects"),
        ({"duplicate_points": 2}, "duplicate points"),
        ({"missing_points": 1}, "points missing"),
    ],
)
def test_every_other_bound_fails_the_run_when_broken(change: dict[str, Any], words: str) -> None:
    report = judged(("completed", COMPLETED))
    for name, value in change.items():
        setattr(report, name, value)
    [problem] = problems(report)
    assert words in problem
