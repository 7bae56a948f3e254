"""The architectures docflow replaces, built minimally on docflow's own processing.

Each does, per document, exactly what ``bench/inprocess.py`` does (the
extractor's and the embedder's handlers: parsing in the sandbox, chunking, the
local model, Qdrant local mode); only what carries the work differs:

- ``celery_app.py`` and ``celery_web.py``: a FastAPI app stores the upload and
  queues a Celery task on Redis (broker and result backend); a prefork worker
  runs it.
- ``background_app.py``: one FastAPI process stores the upload and runs the
  work as a ``BackgroundTasks`` task, after the answer, in the same process.

They are what a team would typically write today: minimal, with the
libraries' defaults, neither tuned nor held back. ``bench/architectures.py``
starts them (with ``bench`` on ``PYTHONPATH``) and compares them with docflow.
"""
