"""docflow embedder: chunk batches → vectors in Qdrant.

Layers: ``domain.py`` (ports, deterministic point ids), ``adapters/`` (the
local MiniLM model, Qdrant), ``handlers.py`` (one batch → vectors, progress,
indexed), ``entrypoints/consumer.py`` (the subscriber), ``bootstrap.py``.
"""

import os

# OpenBLAS's threads spin for a while after each matrix product, waiting for
# the next one (2^28 cycles by default). Beside other services on the same
# cores that spinning takes CPU they need: on 2 cores, embedding the 362
# chunks of GeoTopo-komprimiert.pdf used 40 CPU-s instead of 30 and the whole
# pipeline was slower (bench/pipelining.py). OpenBLAS reads this when numpy
# loads it, so it is set here, before any module of the embedder imports
# numpy; a value set by the operator wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
