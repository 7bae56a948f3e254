"""The BackgroundTasks baseline: one FastAPI process uploads and processes.

``POST /v1/documents`` stores the file, answers 202 and then, in the same
process, processes the document as a ``BackgroundTasks`` task (Starlette runs
it after the answer is sent). Statuses live in a dict in memory, so there is
one process: ``GET /v1/documents/{id}`` for one document, ``GET
/v1/documents`` for all. Run from the repository root:

    PYTHONPATH=bench BASELINE_DATA_DIR=/tmp/background \\
        .venv/bin/python -m uvicorn baselines.background_app:app --port 8000

The pipeline (model, parser sandbox, Qdrant local mode) is loaded once at
start-up. The task is a coroutine on the server's event loop; the blocking
parts of docflow's handlers (parsing, the model) already run in threads, so
the loop goes on answering requests between them, sharing the process (and
its GIL) with the processing. The status routes are coroutines on that loop
too, so they never read a status while a task changes it.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from fastapi import BackgroundTasks, FastAPI, HTTPException, Request, UploadFile
from inprocess import InProcess

from baselines.settings import BaselineSettings

logger = logging.getLogger(__name__)

settings = BaselineSettings()
statuses: dict[str, dict[str, Any]] = {}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pipeline = InProcess(settings.data_dir)
    yield


app = FastAPI(title="BackgroundTasks baseline", lifespan=lifespan)


async def process(pipeline: InProcess, path: Path, document_id: str) -> None:
    """Extract, chunk, embed and index one document; record what became of it."""
    statuses[document_id]["status"] = "processing"
    try:
        processed = await pipeline.process(path, UUID(document_id))
    except Exception as error:  # an exception here would only reach the server's log
        logger.exception("processing %s failed", document_id)
        statuses[document_id] |= {"status": "failed", "failed": repr(error)}
    else:
        statuses[document_id] |= {
            "status": "failed" if processed.failed else "completed",
            "pages": processed.pages,
            "chunks": processed.chunks,
            "failed": processed.failed,
        }
    statuses[document_id]["finished_at"] = time.time()


@app.post("/v1/documents", status_code=202)
def upload(file: UploadFile, background: BackgroundTasks, request: Request) -> dict[str, str]:
    """Store the file; process it after answering."""
    document_id = str(uuid4())
    stored = settings.uploads / document_id / Path(file.filename or "upload").name
    stored.parent.mkdir(parents=True)
    with stored.open("wb") as out:
        shutil.copyfileobj(file.file, out)
    statuses[document_id] = {"id": document_id, "status": "pending"}
    background.add_task(process, request.app.state.pipeline, stored, document_id)
    return {"id": document_id, "status_url": f"/v1/documents/{document_id}"}


@app.get("/v1/documents/{document_id}")
async def status(document_id: str) -> dict[str, Any]:
    """One document's status."""
    if document_id not in statuses:
        raise HTTPException(404, "no such document")
    return statuses[document_id]


@app.get("/v1/documents")
async def all_statuses() -> list[dict[str, Any]]:
    """Every document's status."""
    return list(statuses.values())
