"""docflow extractor: uploaded documents → chunk batches.

Layers: ``domain/`` (reading pages, chunking; no Kafka), ``handlers.py``
(one upload → progress and ``TextExtracted`` batches),
``entrypoints/consumer.py`` (the subscriber), ``bootstrap.py`` (wiring).
"""
