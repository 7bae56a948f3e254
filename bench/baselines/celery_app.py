"""The Celery baseline's worker side: one task that processes a stored document.

Redis is the broker and the result backend. The worker runs as a team would
start it on this machine, with Celery's defaults (prefork pool, one process
per CPU, prefetch multiplier 4, acks on receipt), from the repository root:

    PYTHONPATH=bench BASELINE_REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/celery -A baselines.celery_app worker --pool=prefork --concurrency=2

The task's id is the document's id. Its result is what became of the
document (pages, chunks, why it failed) and when it was done; a document that
fails (an encrypted or damaged PDF) is a task that succeeded with ``failed``
set, as docflow's extractor turns it into a failed status rather than an error.

Two things of docflow's code meet Celery's prefork pool here:

- The parser sandbox starts its workers from a ``multiprocessing``
  forkserver, which the prefork pool does not allow as it comes: billiard
  makes its pool process the standard library's ``current_process()``, so
  (1) ``multiprocessing`` refuses it children, pool processes being daemonic
  ("daemonic processes are not allowed to have children", celery/celery#1709),
  and (2) the forkserver cannot send its preparation data, whose authkey is
  billiard's and refuses to be pickled outside billiard ("Pickling an
  AuthenticationString object is disallowed", dask/distributed#913). Each
  pool process fixes both as it starts (``worker_process_init``, the fix
  #1709 gives, plus an authkey of the standard library's own kind), keeping
  the prefork pool; the ``solo`` and ``threads`` pools need neither. A pool
  process's first document then starts its own forkserver; the parser
  workers are its descendants and end with it (they read until their pipe
  closes).
- Qdrant local mode lets one process at a time open a path, so each pool
  process has its own ``InProcess`` (model, sandbox, Qdrant path), created on
  its first task, after the fork. Nothing heavy is loaded in the parent.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from celery import Celery, Task
from celery.signals import worker_process_init
from inprocess import InProcess

from baselines.settings import BaselineSettings

settings = BaselineSettings()
app = Celery("baselines", broker=settings.redis_url, backend=settings.redis_url)
# The default, said once so that Celery 5 does not warn about its future change.
app.conf.broker_connection_retry_on_startup = True

_pipeline: InProcess | None = None


@worker_process_init.connect
def allow_children(**_: Any) -> None:
    """Let this pool process start the parser sandbox's processes (see above)."""
    process = multiprocessing.current_process()
    process.daemon = False
    # billiard's authkey setter would wrap it in billiard's class again.
    process._config["authkey"] = multiprocessing.process.AuthenticationString(os.urandom(32))


def pipeline() -> InProcess:
    """This pool process's pipeline, created on first use (after the fork)."""
    global _pipeline
    if _pipeline is None:
        _pipeline = InProcess(settings.data_dir / f"worker-{os.getpid()}")
    return _pipeline


@app.task(bind=True)
def process_document(self: Task, path: str) -> dict[str, Any]:
    """Extract, chunk, embed and index the document stored at ``path``."""
    processed = asyncio.run(pipeline().process(Path(path), UUID(self.request.id)))
    return {
        "pages": processed.pages,
        "chunks": processed.chunks,
        "failed": processed.failed,
        "finished_at": time.time(),
    }
