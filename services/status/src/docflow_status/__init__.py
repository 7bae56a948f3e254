"""docflow status: every document event → a SQL read model → the status API.

Layers: ``domain/projection.py`` (the pure fold), ``domain/ports.py`` (what
the use cases and the API need of the read model), ``adapters/read_model.py``
(SQLAlchemy: ``tables.py``, ``projector.py`` exactly-once apply, ``queries.py``,
``rebuild.py``), ``handlers.py``, ``entrypoints/consumer.py`` (the subscriber),
``entrypoints/app.py`` (FastAPI; ``routes/``, one module per resource, and
``deps.py``), ``bootstrap.py``.
"""
