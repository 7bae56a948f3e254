"""The routes' dependencies: each route asks for the ports it uses, and no more.

``app.create_app`` puts the wiring on ``app.state``; these read it back.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from docflow_status.domain.ports import DocumentReader, ReindexReader
from docflow_status.settings import StatusSettings

# async: FastAPI runs a plain def dependency in a worker thread, on every request.


async def _documents(request: Request) -> DocumentReader:
    documents: DocumentReader = request.app.state.documents
    return documents


async def _reindexes(request: Request) -> ReindexReader:
    reindexes: ReindexReader = request.app.state.documents
    return reindexes


async def _stream_poll_s(request: Request) -> float:
    settings: StatusSettings = request.app.state.settings
    return settings.stream_poll_s


Documents = Annotated[DocumentReader, Depends(_documents)]
Reindexes = Annotated[ReindexReader, Depends(_reindexes)]
# How often a stream reads the read model again (DOCFLOW_STREAM_POLL_S).
StreamPoll = Annotated[float, Depends(_stream_poll_s)]
