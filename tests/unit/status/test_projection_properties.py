"""The fold under at-least-once delivery, on random histories (hypothesis).

Whatever order the topics interleave in and whatever is delivered twice, a
document's status ends exactly as when its events arrive one by one in the
order they happened.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docflow_local.postgres import LocalPostgres
from docflow_shared.blobstore import original_key
from docflow_shared.events import Event
from docflow_shared.sql import create_engine
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.domain.projection import DocumentState, evolve
from support.histories import deliveries, histories


def brief(events: list[Event]) -> list[str]:
    """Events in a line each: type, attempt, time, and what they say."""
    out = []
    for e in events:
        what = {
            k: v
            for k, v in e.model_dump(mode="json").items()
            if k in ("stage", "done", "total", "batch", "last", "chunks_total", "error")
        }
        out.append(f"{type(e).__name__}#{e.attempt}@{e.occurred_at:%S} {what}")
    return out


def differences(a: DocumentState | None, b: DocumentState | None) -> dict:
    assert a is not None
    assert b is not None
    return {
        name: (getattr(a, name), getattr(b, name))
        for name in DocumentState.__dataclass_fields__
        if getattr(a, name) != getattr(b, name)
    }


def project(events: list[Event]) -> DocumentState | None:
    """What the read model does: drop an event seen before, fold the rest."""
    seen: set = set()
    state = None
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            state = evolve(state, event)
    return state


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_delivery_ends_where_delivery_in_order_ends(data: st.DataObject) -> None:
    events = data.draw(histories())
    delivered = data.draw(deliveries(events))
    in_order, as_delivered = project(events), project(delivered)
    assert as_delivered == in_order, (differences(as_delivered, in_order), brief(delivered))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_progress_never_goes_back_within_an_attempt(data: st.DataObject) -> None:
    delivered = data.draw(deliveries(data.draw(histories())))
    seen: set = set()
    state: DocumentState | None = None
    for event in delivered:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        before, state = state, evolve(state, event)
        if before is not None and before.attempt == state.attempt:
            assert state.progress >= before.progress, (before, event, state)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.integration),
    ]
)
def empty_database(request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """Gives an empty database for each hypothesis example (of one kind per test)."""
    if request.param == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            files = (f"sqlite+aiosqlite:///{folder}/{n}.db" for n in itertools.count())
            yield lambda: next(files)
        return
    server: LocalPostgres = request.getfixturevalue("postgres")
    names: list[str] = []

    def fresh() -> str:
        names.append(f"property_{uuid.uuid4().hex}")
        return asyncio.run(server.create_database(names[-1]))

    yield fresh
    for name in names:
        asyncio.run(server.drop_database(name))


@st.composite
def in_batches(draw: st.DrawFn, delivered: list[Event]) -> list[list[Event]]:
    """``delivered`` cut into random batches, as the consumer's polls return it."""
    sizes = draw(st.lists(st.integers(1, 8), min_size=len(delivered), max_size=len(delivered)))
    batches, start = [], 0
    for size in sizes:
        if start >= len(delivered):
            break
        batches.append(delivered[start : start + size])
        start += size
    return batches


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_the_sql_read_model_ends_where_delivery_in_order_ends(
    empty_database: Callable[[], str], data: st.DataObject
) -> None:
    """The same on the real read model, whose duplicates are dropped by the database.

    The consumer applies what each poll returned as one batch: the delivery
    is cut into random batches, in which an event and its redelivery can
    both appear.
    """
    events = data.draw(histories())
    delivered = data.draw(deliveries(events))
    batches = data.draw(in_batches(delivered))

    url = empty_database()

    async def stored() -> list[DocumentState]:
        model = SqlReadModel(create_engine(url))
        try:
            await model.migrate()
            for batch in batches:
                await model.apply_all(batch, evolve)
            return await model.everything()
        finally:
            await model.close()

    assert asyncio.run(stored()) == [project(events)]


@st.composite
def forgeries(draw: st.DrawFn, events: list[Event]) -> tuple[list[Event], list[Event]]:
    """``events`` with forged ones published among them, after the upload (whose
    document id nobody else knows before), and the forged ones.

    A forgery is a copy of a real event under another tenant (an upload or a
    retry with that tenant's own claim check, the strongest kind), or a retry
    under the owner's tenant whose claim check points at another document.
    """
    real = list(events)
    forged: list[Event] = []
    for _ in range(draw(st.integers(1, 4))):
        model = draw(st.sampled_from(real))
        update: dict = {"event_id": uuid.uuid4(), "tenant_id": "globex"}
        if hasattr(model, "blob_key"):
            if draw(st.booleans()):
                update["blob_key"] = original_key("globex", model.document_id)
            else:
                update = {"event_id": uuid.uuid4(), "blob_key": f"globex/{uuid.uuid4()}/original"}
        forged.append(model.model_copy(update=update))
    mixed = list(real)
    for one in forged:
        # Often right after the upload: first on its topic, so that a consumer
        # polling that topic first reads it before the upload.
        mixed.insert(draw(st.one_of(st.just(1), st.integers(1, len(mixed)))), one)
    return mixed, forged


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_forged_events_change_nothing_whatever_order_the_topics_come_in(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Forged events interleaved with a document's real ones, delivered in any order
    and cut into any batches (a live consumer, a rebuild, a replay): the read model
    ends exactly where the real events alone take it, and every forged event, and
    only those, is rejected, whether it came before the upload or after."""
    events = data.draw(histories())
    mixed, forged = data.draw(forgeries(events))
    delivered = data.draw(deliveries(mixed))
    batches = data.draw(in_batches(delivered))
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('forged')}/status.db"

    async def stored() -> tuple[list[DocumentState], set[uuid.UUID], list[Event]]:
        model = SqlReadModel(create_engine(url))
        try:
            await model.migrate()
            rejected: set[uuid.UUID] = set()
            for batch in batches:
                projected = await model.apply_all(batch, evolve)
                rejected |= {event.event_id for event, _ in projected.rejected}
            waiting = await model.unowned_before(datetime.now(UTC) + timedelta(days=1), 1000)
            return await model.everything(), rejected, waiting
        finally:
            await model.close()

    states, rejected, waiting = asyncio.run(stored())
    assert states == [project(events)]
    assert rejected == {event.event_id for event in forged}
    assert waiting == []
