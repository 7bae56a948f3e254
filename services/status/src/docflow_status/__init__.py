"""docflow status: every document event → a SQL read model → the status API.

Layers: ``domain/projection.py`` (the pure fold), ``adapters/read_model.py``
(SQLAlchemy, exactly-once apply), ``handlers.py``, ``entrypoints/consumer.py``
(the subscriber), ``entrypoints/http.py`` (FastAPI), ``bootstrap.py``.
"""
