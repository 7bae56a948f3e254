"""The watchdog loop: stalls announced and projected, the document gauges kept up to date."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from prometheus_client import CollectorRegistry

from docflow_shared.events import Event
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.domain.projection import evolve
from docflow_status.entrypoints.watchdog import WatchdogMetrics, run_watchdog
from docflow_status.handlers import Watchdog
from support.histories import successful
from support.waiting import await_until


def a_day_ago(events: list[Event]) -> list[Event]:
    return [e.model_copy(update={"occurred_at": e.occurred_at - timedelta(days=1)}) for e in events]


async def test_a_quiet_document_is_announced_projected_and_counted(
    read_model: SqlReadModel,
) -> None:
    # One completed, one stuck while extracting, both a day ago.
    done, quiet = a_day_ago(successful()), a_day_ago(successful()[:3])
    for event in [*done, *quiet]:
        await read_model.apply(event, evolve)

    async def publish(event: Event) -> None:
        # As the service does: the announcement comes back through its topic.
        await read_model.apply(event, evolve)

    watchdog = Watchdog(read_model, publish, stall_after=timedelta(minutes=5))
    registry = CollectorRegistry()
    task = asyncio.create_task(
        run_watchdog(watchdog, read_model.census, WatchdogMetrics(registry), every_s=0.05)
    )
    try:

        def stalled_gauge() -> float | None:
            return registry.get_sample_value("docflow_documents_stalled") or None

        assert await await_until(stalled_gauge, timeout_s=10, what="the stalled gauge") == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    state = await read_model.get(quiet[0].document_id, "t1")
    assert state is not None
    assert state.stalled
    assert state.stalled_since == quiet[-1].occurred_at
    assert registry.get_sample_value("docflow_stalls_announced_total") == 1
    assert registry.get_sample_value("docflow_documents", {"status": "completed"}) == 1
    assert registry.get_sample_value("docflow_documents", {"status": "processing"}) == 1
