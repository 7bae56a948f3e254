"""Rebuilding the read model by replaying the topics from offset 0, on the real
broker, on SQLite and PostgreSQL, while the projector keeps running."""

from __future__ import annotations

import uuid
from functools import reduce

import pytest
from faststream.kafka import TestKafkaBroker
from sqlalchemy import text

from docflow_shared.events import (
    DocumentDeleted,
    EmbeddingSpec,
    Event,
    ReindexAdvanced,
    ReindexCompleted,
    ReindexEvent,
    ReindexRequested,
)
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.messaging import make_broker
from docflow_shared.topics import specs
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.bootstrap import Ports, wire
from docflow_status.domain.projection import evolve
from docflow_status.entrypoints.rebuild import rebuild
from docflow_status.settings import StatusSettings
from support.histories import envelope, failed_while_extracting, retry_of, successful
from support.waiting import await_until

pytestmark = pytest.mark.integration


def reindexed() -> list[ReindexEvent]:
    """A re-embedding's events, as the status service reads them.

    The e2e stacks started later in the session read these topics too: the
    model is one no embedder can build, so theirs just fail the request.
    """
    common = {"reindex_id": uuid.uuid4(), "tenant_id": "ops", "correlation_id": "c"}
    spec = EmbeddingSpec(backend="local", model="no-such-model")
    names = {"source": "docflow_all-minilm-l6-v2_384", "target": "docflow_no-such-model_8"}
    return [
        ReindexRequested(**common, embedding=spec),
        ReindexAdvanced(
            **common, **names, embedding=spec, sweep=1, more=True, cursor=None,
            done=0, embedded=0, total=3,
        ),
        ReindexCompleted(
            **common, **names, embedding=spec, embedded=3, switched=True, message="switched"
        ),
    ]  # fmt: skip


def retried_and_completed() -> list[Event]:
    d = uuid.uuid4()
    first = failed_while_extracting(d)
    retry = retry_of(d, 10)
    second = [
        e.model_copy(update={"attempt": 2, "occurred_at": e.occurred_at.replace(minute=5)})
        for e in successful(d)[1:]
    ]
    return [*first, retry, *second]


async def test_the_rebuilt_read_model_equals_the_live_one(
    kafka_bootstrap: str, read_model: SqlReadModel, database_url: str
) -> None:
    await ensure_topics(kafka_bootstrap, specs())
    settings = StatusSettings(
        kafka_bootstrap_servers=kafka_bootstrap, database_url=database_url, stall_after_s=60
    )
    deleted = successful()
    histories = [
        successful(),
        failed_while_extracting(),
        retried_and_completed(),
        [*deleted, DocumentDeleted(**envelope(deleted[0].document_id, 99))],
    ]
    ours = {events[0].document_id for events in histories}
    operation = reindexed()
    reindex_id = operation[0].reindex_id
    broker = make_broker(kafka_bootstrap, service="status")
    wire(broker, Ports(read_model), settings)
    async with TestKafkaBroker(broker, with_real=True) as br:
        for events in histories:
            for event in events:
                await br.publish(event, topic=event.TOPIC, key=str(event.document_id).encode())
        for step in operation:
            await br.publish(step, topic=step.TOPIC, key=str(reindex_id).encode())

        # Every event applied: each document where folding its history ends
        # (a status alone could be read between the two attempts of one).
        expected = sorted(
            (state for h in histories if (state := reduce(evolve, h, None)) is not None),
            key=lambda state: state.id,
        )

        async def projected() -> list | None:
            states = [s for s in await read_model.everything() if s.id in ours]
            return states if states == expected else None

        live = await await_until(projected, timeout_s=60, what="the live read model")

        async def reindex_projected() -> object:
            state = await read_model.reindex(reindex_id, "ops")
            return state if state is not None and state.status == "completed" else None

        operation_live = await await_until(reindex_projected, timeout_s=60, what="the reindex")

        # The live model drifts (a lost row, a wrong status): the rebuild restores it.
        async with read_model.engine.begin() as connection:
            lost, wrong = sorted(ours)[:2]
            await connection.execute(
                text("DELETE FROM documents WHERE id = :id"), {"id": _db_id(lost, database_url)}
            )
            await connection.execute(
                text("UPDATE documents SET status = 'pending' WHERE id = :id"),
                {"id": _db_id(wrong, database_url)},
            )
            await connection.execute(text("DELETE FROM reindexes"))
        assert [s for s in await read_model.everything() if s.id in ours] != live
        assert await read_model.reindex(reindex_id, "ops") is None

        # The projector is still running while the rebuild replays and swaps.
        report = await rebuild(settings)

    assert report.events_replayed >= sum(len(h) for h in histories)
    assert report.documents >= len(ours)
    assert [s for s in await read_model.everything() if s.id in ours] == live
    assert await read_model.reindex(reindex_id, "ops") == operation_live


def _db_id(document_id: uuid.UUID, database_url: str) -> object:
    # SQLAlchemy's Uuid is CHAR(32) hex on SQLite and a native uuid on PostgreSQL.
    return document_id.hex if database_url.startswith("sqlite") else document_id
