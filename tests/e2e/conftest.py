"""Fixtures of the end-to-end tier."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from support.openai_server import EmbeddingsServer, embeddings_server


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
