"""A re-embedding operation's status: the fold, the read model on both databases, and
GET /v1/reindex/{id}."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import httpx
from prometheus_client import CollectorRegistry

from docflow_shared.events import (
    EmbeddingSpec,
    ReindexAdvanced,
    ReindexCompleted,
    ReindexEvent,
    ReindexFailed,
    ReindexRequested,
)
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.domain.reindexes import ReindexState, evolve
from docflow_status.entrypoints.app import StatusApi, create_app
from docflow_status.settings import StatusSettings

SPEC = EmbeddingSpec(backend="openai", model="text-embedding-3-small")
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def history(reindex_id: UUID, *, switched: bool = True, tenant: str = "ops") -> list[ReindexEvent]:
    common = {"reindex_id": reindex_id, "tenant_id": tenant, "correlation_id": "c"}
    steps = [
        (1, True, None, 0, 0),
        (1, True, "p5", 5, 5),
        (1, False, None, 8, 8),
        (2, True, None, 0, 8),
        (2, False, None, 8, 8),
    ]
    return [
        ReindexRequested(**common, embedding=SPEC, occurred_at=T0),
        *(
            ReindexAdvanced(
                **common,
                embedding=SPEC,
                source="docflow_all-minilm-l6-v2_384",
                target="docflow_text-embedding-3-small_1536",
                sweep=sweep,
                more=more,
                cursor=cursor,
                done=done,
                embedded=embedded,
                total=8,
                occurred_at=T0 + timedelta(seconds=n + 1),
            )
            for n, (sweep, more, cursor, done, embedded) in enumerate(steps)
        ),
        ReindexCompleted(
            **common,
            embedding=SPEC,
            source="docflow_all-minilm-l6-v2_384",
            target="docflow_text-embedding-3-small_1536",
            embedded=8,
            switched=switched,
            message="searches and new documents now use docflow_text-embedding-3-small_1536",
            occurred_at=T0 + timedelta(seconds=10),
        ),
    ]


def fold(events: list[ReindexEvent]) -> ReindexState:
    state = None
    for event in events:
        state = evolve(state, event)
    assert state is not None
    return state


def test_progress_rises_step_by_step_to_completed() -> None:
    events = history(uuid4())
    states = [fold(events[: n + 1]) for n in range(len(events))]
    assert [s.status for s in states] == ["pending"] + ["running"] * 5 + ["completed"]
    progress = [s.progress for s in states]
    assert progress == sorted(progress)
    assert progress[0] == 0
    assert progress[-1] == 100
    assert 0 < progress[2] < 90 <= progress[4] < 100
    last = states[-1]
    assert last.switched
    assert last.embedded == 8
    assert last.model == SPEC.model
    assert last.created_at == T0
    assert last.updated_at == T0 + timedelta(seconds=10)
    assert states[0].message.startswith("waiting for the embedder")
    assert "5 of 8 chunks" in states[2].message


def test_any_order_and_any_repetition_give_the_same_final_state() -> None:
    events = history(uuid4())
    expected = fold(events)
    for order in itertools.islice(itertools.permutations(events), 0, 5040, 97):
        assert fold([*order, *order[:3]]) == expected


def test_a_failure_is_final_and_says_why() -> None:
    reindex_id = uuid4()
    events = history(reindex_id)[:3]
    failed = ReindexFailed(
        reindex_id=reindex_id, tenant_id="ops", correlation_id="c", reason="APIError: 401"
    )
    state = fold([*events, failed, *history(reindex_id)[3:5]])
    assert state.status == "failed"
    assert state.error == "APIError: 401"
    assert state.message == "re-embedding stopped: APIError: 401"
    # Only a completion, which means the switch happened, overrides it.
    assert fold([*events, failed, history(reindex_id)[-1]]).status == "completed"


async def test_the_read_model_keeps_each_operation_for_the_tenant_that_asked(
    read_model: SqlReadModel,
) -> None:
    first, second = uuid4(), uuid4()
    events = history(first) + history(second, switched=False)
    # In batches, with a redelivered one.
    await read_model.apply_reindexes(events[:4])
    await read_model.apply_reindexes(events[2:9])
    await read_model.apply_reindexes(events[9:])
    assert await read_model.reindex(first, "ops") == fold(history(first))
    assert await read_model.reindex(second, "ops") == fold(history(second, switched=False))
    assert await read_model.reindex(first, "someone-else") is None
    assert await read_model.reindex(uuid4(), "ops") is None


async def test_get_reindex_answers_its_status_or_a_404_problem(read_model: SqlReadModel) -> None:
    reindex_id = uuid4()
    # Authentication is off: every caller is the default tenant.
    await read_model.apply_reindexes(history(reindex_id, tenant="default")[:3])
    api = StatusApi(
        settings=StatusSettings(), documents=read_model, checks={}, registry=CollectorRegistry()
    )
    app = create_app(api)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://status"
    ) as http:
        found = await http.get(f"/v1/reindex/{reindex_id}")
        assert found.status_code == 200
        body = found.json()
        assert body["id"] == str(reindex_id)
        assert (body["status"], body["done"], body["total"], body["switched"]) == (
            "running",
            5,
            8,
            False,
        )
        assert body["target"] == "docflow_text-embedding-3-small_1536"
        for wrong in (str(uuid4()), "not-a-uuid"):
            missing = await http.get(f"/v1/reindex/{wrong}")
            assert missing.status_code == 404
            assert missing.headers["content-type"] == "application/problem+json"
            assert "POST /v1/reindex" in missing.json()["detail"]
