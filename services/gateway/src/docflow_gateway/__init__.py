"""docflow gateway: the upload API.

Layers: ``domain/`` (what a file is, pure), ``handlers.py`` (store, then
announce ``DocumentUploaded``), ``entrypoints/http.py`` (FastAPI),
``bootstrap.py`` (real adapters), ``settings.py``.
"""
