"""The Celery baseline's web side: upload a document, ask for its status.

``POST /v1/documents`` stores the file and queues ``process_document``;
``GET /v1/documents/{id}`` reads the task's state from the result backend.
Run as a team would, one uvicorn process, from the repository root:

    PYTHONPATH=bench BASELINE_REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m uvicorn baselines.celery_web:app --port 8000

The routes are plain ``def``: FastAPI runs them in its thread pool, so the
file write and the Redis calls do not hold up the event loop.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from uuid import uuid4

from celery.result import AsyncResult
from fastapi import FastAPI, UploadFile

from baselines.celery_app import app as celery
from baselines.celery_app import process_document, settings

app = FastAPI(title="Celery baseline")


@app.post("/v1/documents", status_code=202)
def upload(file: UploadFile) -> dict[str, str]:
    """Store the file and queue its processing."""
    stored = settings.uploads / uuid4().hex / Path(file.filename or "upload").name
    stored.parent.mkdir(parents=True)
    with stored.open("wb") as out:
        shutil.copyfileobj(file.file, out)
    task = process_document.delay(str(stored))
    return {"id": task.id, "status_url": f"/v1/documents/{task.id}"}


@app.get("/v1/documents/{document_id}")
def status(document_id: str) -> dict[str, Any]:
    """The document's status; an id Celery never saw reads as pending, as Celery has it."""
    result = AsyncResult(document_id, app=celery)
    if result.state == "SUCCESS":
        outcome: dict[str, Any] = result.result
        return {"id": document_id, "status": "failed" if outcome["failed"] else "completed"} | (
            outcome
        )
    if result.state == "FAILURE":
        return {"id": document_id, "status": "failed", "failed": repr(result.result)}
    return {"id": document_id, "status": "pending"}
