"""``python -m docflow_status rebuild``: the read model rebuilt from the topics.

1. Every document topic (and re-embedding topic) is replayed from offset 0
   to its current end, without a consumer group, and folded (the service's
   own fold and repository) into fresh tables beside the live ones
   (``adapters.rebuild.Rebuild``).
2. The rebuilt rows replace the live ones in one transaction.
3. What arrived meanwhile (from where the replay stopped to the new end) is
   applied to the swapped-in model; events the running service applied
   before or after the swap are recognised by their ids and skipped.

Safe while the status service runs: it keeps answering from the live tables
until the swap, and its projector goes on afterwards on the new ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from docflow_shared import topics
from docflow_shared.events import Event, ReindexEvent
from docflow_shared.sql import create_engine
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.adapters.rebuild import Rebuild
from docflow_status.adapters.replay import replay
from docflow_status.domain.projection import evolve
from docflow_status.settings import StatusSettings


@dataclass(frozen=True)
class RebuildReport:
    events_replayed: int
    events_after_swap: int
    unreadable_messages: int
    documents: int
    seconds: float


async def rebuild(settings: StatusSettings) -> RebuildReport:
    """Rebuild the read model of ``settings``' database from ``settings``' Kafka."""
    started = time.monotonic()
    url = settings.effective_database_url
    live = SqlReadModel(create_engine(url))
    scratch = Rebuild(url)
    try:
        await live.migrate()
        await scratch.start()

        async def into(model: SqlReadModel, events: list[Event | ReindexEvent]) -> None:
            await model.apply_all([e for e in events if isinstance(e, Event)], evolve)
            await model.apply_reindexes([e for e in events if isinstance(e, ReindexEvent)])

        async def into_scratch(events: list[Event | ReindexEvent]) -> None:
            await into(scratch.model, events)

        async def into_live(events: list[Event | ReindexEvent]) -> None:
            await into(live, events)

        bootstrap = settings.kafka_bootstrap_servers
        every = (*topics.ALL, *topics.REINDEX)
        security = settings.kafka_security
        replayed = await replay(bootstrap, every, into_scratch, security=security)
        await scratch.swap_in()
        caught_up = await replay(
            bootstrap, every, into_live, start=replayed.positions, security=security
        )
        documents = len(await live.everything())
    finally:
        await scratch.close()
        await live.close()
    return RebuildReport(
        events_replayed=replayed.events,
        events_after_swap=caught_up.events,
        unreadable_messages=replayed.unreadable + caught_up.unreadable,
        documents=documents,
        seconds=round(time.monotonic() - started, 2),
    )
