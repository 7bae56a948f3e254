"""docflow gateway: the upload API.

Layers: ``domain/`` (what a file is, pure), ``handlers.py`` (store, then
announce ``DocumentUploaded``), ``operations.py``, ``idempotency.py`` and
``redrive.py`` (the service layer), ``entrypoints/`` (FastAPI: ``app.py``,
``deps.py``, one module per resource in ``routes/``), ``bootstrap.py`` (real
adapters), ``settings.py``.
"""
