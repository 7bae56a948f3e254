"""docflow embedder: chunk batches → vectors in Qdrant.

Layers: ``domain.py`` (ports, deterministic point ids), ``adapters/`` (the
local MiniLM model, Qdrant), ``handlers.py`` (one batch → vectors, progress,
indexed), ``entrypoints/consumer.py`` (the subscriber), ``bootstrap.py``.
"""
