"""Fixtures of the end-to-end tier."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from support.openai_server import EmbeddingsServer, embeddings_server
from support.stacks import BlobPlace


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """An HTTP client for the running services."""
    with httpx.Client(timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddingsServer]:
    """An OpenAI-compatible embeddings server (8 dimensions) for the module's stack."""
    with embeddings_server(dimension=8) as running:
        yield running


@pytest.fixture(scope="module", params=["local", "s3"])
def blobs(request: pytest.FixtureRequest) -> BlobPlace:
    """Where the module's stack keeps blobs: the local folder, then S3 (a real
    SeaweedFS). Modules whose tests touch blobs (uploads, retries from stored
    chunks, deletion) take this fixture and so run once on each store."""
    if request.param == "local":
        return BlobPlace()
    return BlobPlace(request.getfixturevalue("s3_server"))
