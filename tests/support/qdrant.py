"""A Qdrant server for the tests that need one (payload indexes, aliases over HTTP).

In order of preference: the server named by ``DOCFLOW_TEST_QDRANT_URL``; a
container from testcontainers when a Docker engine answers. Otherwise there is
none (no Qdrant server binary can be installed on a machine without Docker),
and those tests are skipped, saying so; the same code runs on Qdrant's local
mode in every other test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from support.kafka import docker_engine_answers

QDRANT_IMAGE = "qdrant/qdrant:v1.16.2"


@contextmanager
def qdrant_server() -> Iterator[str | None]:
    """The URL of a Qdrant server for the duration of the block, or None."""
    given = os.environ.get("DOCFLOW_TEST_QDRANT_URL")
    if given:
        yield given
    elif docker_engine_answers():
        from testcontainers.community.qdrant import QdrantContainer

        with QdrantContainer(QDRANT_IMAGE) as container:
            yield f"http://{container.rest_host_address}"
    else:
        yield None
