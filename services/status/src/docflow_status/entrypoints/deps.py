"""What the status API's routes depend on, one port each (``Annotated`` aliases).

Each reads its port from the app's state, which ``app.create_app`` sets from
the wiring (``StatusApi``). Every dependency is ``async``: FastAPI runs a
plain ``def`` dependency in a worker thread, on every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from docflow_shared.http import Tenant
from docflow_shared.ratelimit import TenantRateLimit
from docflow_status.domain.ports import DocumentReader, QueueViews, ReindexReader
from docflow_status.domain.queues import QueueView
from docflow_status.entrypoints.slots import StreamSlots
from docflow_status.settings import StatusSettings


async def _documents(request: Request) -> DocumentReader:
    documents: DocumentReader = request.app.state.documents
    return documents


DocumentsDep = Annotated[DocumentReader, Depends(_documents)]


async def _reindexes(request: Request) -> ReindexReader:
    reindexes: ReindexReader = request.app.state.documents
    return reindexes


ReindexesDep = Annotated[ReindexReader, Depends(_reindexes)]


async def _stream_poll_s(request: Request) -> float:
    settings: StatusSettings = request.app.state.settings
    return settings.stream_poll_s


StreamPollDep = Annotated[float, Depends(_stream_poll_s)]
"""How often a stream reads the read model again (``DOCFLOW_STREAM_POLL_S``)."""


async def rate_limited(request: Request, tenant: Tenant) -> str:
    """The calling tenant; 429 once it exceeds ``DOCFLOW_RATE_LIMIT`` (every route)."""
    rate_limit: TenantRateLimit = request.app.state.rate_limit
    await rate_limit.check(tenant)
    return tenant


async def _stream_slots(request: Request) -> StreamSlots:
    slots: StreamSlots = request.app.state.stream_slots
    return slots


StreamSlotsDep = Annotated[StreamSlots, Depends(_stream_slots)]
"""Each tenant's open streams (``DOCFLOW_MAX_STREAMS_PER_TENANT``)."""


async def _queues(request: Request) -> QueueViews:
    queues: QueueViews | None = request.app.state.queues
    return queues or _NO_QUEUES


class _NoQueues:
    async def view(self) -> QueueView:
        return QueueView()


_NO_QUEUES = _NoQueues()

QueuesDep = Annotated[QueueViews, Depends(_queues)]
"""The stages' queues as last measured (queue positions and estimates)."""
